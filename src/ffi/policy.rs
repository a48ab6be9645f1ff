//! `privseg_policy` (reference counted, immutable) and
//! `privseg_policy_builder`.

use std::ffi::c_char;
use std::sync::Arc;

use super::error::{ErrorObject, give_error, privseg_error};
use super::prelude::*;
use super::{
    FfiError, ffi_status, non_null, privseg_status, privseg_str, str_arg, str_list, write_out,
    write_text,
};
use crate::policy::{
    AttributeSpec, CategorySpec, LawfulBasis, Policy, PolicyBuilder, PurposeSpec, RoleSpec,
};

/// A validated, immutable policy. Reference counted: share it between
/// threads with [`privseg_policy_clone`]; each reference is released with
/// [`privseg_policy_free`].
pub struct privseg_policy {
    _opaque: [u8; 0],
}

impl Castable for privseg_policy {
    type Rust = Policy;
    const WHAT: &'static str = "policy";
}
impl ArcCastable for privseg_policy {}

/// Hands a policy to C.
pub(crate) fn policy_out(p: Arc<Policy>) -> *const privseg_policy {
    to_arc(p)
}

/// Loads and validates a policy from its JSON form.
///
/// On success `*policy_out` receives a new reference. On failure the status
/// is `PRIVSEG_STATUS_POLICY_JSON` (with line and column in the error object)
/// or `PRIVSEG_STATUS_POLICY_INVALID` (every problem in the message), and
/// `*err_out`, when `err_out` is not NULL, receives an error object to free
/// with `privseg_error_free`.
///
/// # Safety
/// `json` must point to `len` readable bytes; `policy_out` must point to a
/// writable pointer; `err_out` must be NULL or point to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_from_json(
    json: *const c_char,
    len: usize,
    policy_out: *mut *const privseg_policy,
    err_out: *mut *mut privseg_error,
) -> privseg_status {
    ffi_status!({
        let json = from_caller!(str_arg(json, len, "json"))?;
        non_null(policy_out, "policy_out")?;
        match Policy::from_json(json) {
            Ok(p) => from_caller!(write_out(policy_out, policy_out_arc(p))),
            Err(e) => Err(from_caller!(give_error(ErrorObject::from(&e), err_out))),
        }
    })
}

fn policy_out_arc(p: Policy) -> *const privseg_policy {
    policy_out(Arc::new(p))
}

/// Adds a reference to a policy and returns it (the same pointer); NULL for
/// NULL.
///
/// # Safety
/// `policy` must be NULL or a live policy reference from this library.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_clone(
    policy: *const privseg_policy,
) -> *const privseg_policy {
    super::ffi_value!(std::ptr::null(), { from_caller!(clone_arc_ptr(policy)) })
}

/// Releases one reference to a policy; NULL does nothing. The policy is
/// freed with its last reference (engines and segments hold their own).
///
/// # Safety
/// `policy` must be NULL or a live policy reference from this library, not
/// used through this reference after the call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_free(policy: *const privseg_policy) {
    super::ffi_value!((), {
        from_caller!(free_arc(policy));
    })
}

/// Copies the policy's version (64 hex digits: the SHA-256 of its canonical
/// JSON) into `buf`, following the buffer convention of this API.
///
/// # Safety
/// `policy` must be a live policy reference; `buf` must be NULL or point to
/// `len` writable bytes; `written` must point to a writable `size_t`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_version(
    policy: *const privseg_policy,
    buf: *mut c_char,
    len: usize,
    written: *mut usize,
) -> privseg_status {
    ffi_status!({
        let p = try_ref_from_ptr!(policy)?;
        let v = p.version().to_string();
        from_caller!(write_text(v.as_bytes(), buf, len, written))
    })
}

/// Builds a policy in code, piece by piece; [`privseg_policy_builder_build`]
/// uses it up. Free it with [`privseg_policy_builder_free`], built or not.
pub struct privseg_policy_builder {
    _opaque: [u8; 0],
}

/// What a `*mut privseg_policy_builder` points to: `None` once built.
type BuilderState = Option<PolicyBuilder>;

/// Category flag: a GDPR Art. 9 special category.
pub const PRIVSEG_CATEGORY_SPECIAL: u32 = 1;
/// Category flag: GDPR Art. 10 criminal data.
pub const PRIVSEG_CATEGORY_CRIMINAL: u32 = 2;
/// Category flag: CCPA sensitive personal information.
pub const PRIVSEG_CATEGORY_CCPA_SENSITIVE: u32 = 4;
/// Category flag: a protected attribute (fairness audits only).
pub const PRIVSEG_CATEGORY_PROTECTED: u32 = 8;

/// Purpose flag: marketing by email (ePrivacy rules apply).
pub const PRIVSEG_PURPOSE_EMAIL: u32 = 1;
/// Purpose flag: the email soft opt-in applies (needs `PRIVSEG_PURPOSE_EMAIL`).
pub const PRIVSEG_PURPOSE_SOFT_OPT_IN: u32 = 2;
/// Purpose flag: a CCPA sale or share.
pub const PRIVSEG_PURPOSE_SALE_SHARE: u32 = 4;
/// Purpose flag: necessary for the service (CCPA sensitive data stays usable).
pub const PRIVSEG_PURPOSE_SENSITIVE_NECESSARY: u32 = 8;
/// Purpose flag: still allowed for restricted subjects.
pub const PRIVSEG_PURPOSE_RESTRICTION_EXEMPT: u32 = 16;

/// Role permission: evaluate segments of the listed purposes for counts
/// (`privseg_engine_count`).
pub const PRIVSEG_PERMISSION_COUNT: u32 = 1;
/// Role permission: see the member ids of segments of the listed purposes
/// (`privseg_engine_evaluate`).
pub const PRIVSEG_PERMISSION_MEMBER_IDS: u32 = 2;
/// Role permission: explain a subject's membership in segments of the listed
/// purposes (`privseg_engine_explain`).
pub const PRIVSEG_PERMISSION_EXPLAIN: u32 = 4;
/// Role permission: add, change and erase subjects, record their events and
/// report on them (`privseg_engine_subject_report`).
pub const PRIVSEG_PERMISSION_SUBJECTS: u32 = 8;
/// Role permission: read the audit log and compliance reports.
pub const PRIVSEG_PERMISSION_READ_AUDIT: u32 = 16;
/// Role permission: change the policy and run fairness audits.
pub const PRIVSEG_PERMISSION_ADMINISTER: u32 = 32;

/// The permissions that apply to the purposes listed with them.
const PURPOSE_PERMISSIONS: u32 =
    PRIVSEG_PERMISSION_COUNT | PRIVSEG_PERMISSION_MEMBER_IDS | PRIVSEG_PERMISSION_EXPLAIN;

/// A lawful basis (GDPR Art. 6(1)), passed as a `uint32_t`.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum privseg_basis {
    /// Art. 6(1)(a).
    Consent = 1,
    /// Art. 6(1)(b).
    Contract = 2,
    /// Art. 6(1)(c).
    LegalObligation = 3,
    /// Art. 6(1)(d).
    VitalInterests = 4,
    /// Art. 6(1)(e).
    PublicTask = 5,
    /// Art. 6(1)(f).
    LegitimateInterests = 6,
}

fn basis_of(v: u32) -> Result<LawfulBasis, FfiError> {
    Ok(match v {
        1 => LawfulBasis::Consent,
        2 => LawfulBasis::Contract,
        3 => LawfulBasis::LegalObligation,
        4 => LawfulBasis::VitalInterests,
        5 => LawfulBasis::PublicTask,
        6 => LawfulBasis::LegitimateInterests,
        _ => return Err(FfiError::arg(format!("unknown lawful basis {v}"))),
    })
}

fn check_flags(flags: u32, known: u32, what: &str) -> Result<(), FfiError> {
    if flags & !known != 0 {
        return Err(FfiError::arg(format!(
            "unknown {what} flags {:#x}",
            flags & !known
        )));
    }
    Ok(())
}

impl Castable for privseg_policy_builder {
    type Rust = BuilderState;
    const WHAT: &'static str = "builder";
}
impl BoxCastable for privseg_policy_builder {}

/// Applies `f` to a builder that has not been built yet.
///
/// # Safety
/// As for [`builder_mut`].
unsafe fn with_builder(
    b: *mut privseg_policy_builder,
    f: impl FnOnce(PolicyBuilder) -> PolicyBuilder,
) -> Result<(), FfiError> {
    let state = try_mut_from_ptr!(b)?;
    let inner = state.take().ok_or_else(|| {
        FfiError::new(
            privseg_status::AlreadyUsed,
            "this policy builder was already built",
        )
    })?;
    *state = Some(f(inner));
    Ok(())
}

/// A builder for a policy of this controller (legal name), with the default
/// jurisdictions (the EU, its member states, US-CA).
///
/// # Safety
/// `controller` must point to `len` readable bytes; `builder_out` must point
/// to a writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_new(
    controller: *const c_char,
    len: usize,
    builder_out: *mut *mut privseg_policy_builder,
) -> privseg_status {
    ffi_status!({
        let controller = from_caller!(str_arg(controller, len, "controller"))?;
        non_null(builder_out, "builder_out")?;
        let state: Box<BuilderState> = Box::new(Some(PolicyBuilder::new(controller)));
        from_caller!(write_out(
            builder_out,
            to_box::<privseg_policy_builder>(*state)
        ))
    })
}

/// Frees a builder, built or not; NULL does nothing.
///
/// # Safety
/// `builder` must be NULL or a live builder from this library, not used after
/// this call.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_free(builder: *mut privseg_policy_builder) {
    super::ffi_value!((), {
        from_caller!(free_box(builder));
    })
}

/// Adds a data category: a dotted key, `PRIVSEG_CATEGORY_*` flags, and a
/// retention period in days (0 for none).
///
/// Returns `PRIVSEG_STATUS_ALREADY_USED` after the builder was built.
///
/// # Safety
/// `builder` must be a live builder used by no other thread; `key` must point
/// to `key_len` readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_category(
    builder: *mut privseg_policy_builder,
    key: *const c_char,
    key_len: usize,
    flags: u32,
    retention_days: u32,
) -> privseg_status {
    ffi_status!({
        let key = from_caller!(str_arg(key, key_len, "key"))?;
        check_flags(
            flags,
            PRIVSEG_CATEGORY_SPECIAL
                | PRIVSEG_CATEGORY_CRIMINAL
                | PRIVSEG_CATEGORY_CCPA_SENSITIVE
                | PRIVSEG_CATEGORY_PROTECTED,
            "category",
        )?;
        let mut c = CategorySpec::new(key);
        if flags & PRIVSEG_CATEGORY_SPECIAL != 0 {
            c = c.special();
        }
        if flags & PRIVSEG_CATEGORY_CRIMINAL != 0 {
            c = c.criminal();
        }
        if flags & PRIVSEG_CATEGORY_CCPA_SENSITIVE != 0 {
            c = c.ccpa_sensitive();
        }
        if flags & PRIVSEG_CATEGORY_PROTECTED != 0 {
            c = c.protected();
        }
        if retention_days != 0 {
            c = c.retention_days(retention_days);
        }
        from_caller!(with_builder(builder, |b| b.category(c)))
    })
}

/// Adds an attribute spec after checking the builder's arguments.
///
/// # Safety
/// As for [`with_builder`]; the strings as for [`str_arg`].
unsafe fn add_attribute(
    builder: *mut privseg_policy_builder,
    name: *const c_char,
    name_len: usize,
    category: *const c_char,
    category_len: usize,
    make: impl FnOnce(&str, &str) -> AttributeSpec,
) -> Result<(), FfiError> {
    let name = from_caller!(str_arg(name, name_len, "name"))?;
    let category = from_caller!(str_arg(category, category_len, "category"))?;
    let spec = make(name, category);
    from_caller!(with_builder(builder, |b| b.attribute(spec)))
}

/// Adds a categorical attribute with its declared values.
///
/// # Safety
/// `builder` must be a live builder used by no other thread; each string
/// must point to its length in readable bytes; `values` must point to
/// `value_count` `privseg_str` (or be NULL when `value_count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_attribute_categorical(
    builder: *mut privseg_policy_builder,
    name: *const c_char,
    name_len: usize,
    category: *const c_char,
    category_len: usize,
    values: *const privseg_str,
    value_count: usize,
) -> privseg_status {
    ffi_status!({
        let values = from_caller!(str_list(values, value_count, "values"))?;
        from_caller!(add_attribute(
            builder,
            name,
            name_len,
            category,
            category_len,
            |n, c| { AttributeSpec::categorical(n, c, &values) }
        ))
    })
}

/// Adds an integer attribute with inclusive bounds.
///
/// # Safety
/// `builder` must be a live builder used by no other thread; each string
/// must point to its length in readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_attribute_integer(
    builder: *mut privseg_policy_builder,
    name: *const c_char,
    name_len: usize,
    category: *const c_char,
    category_len: usize,
    min: i64,
    max: i64,
) -> privseg_status {
    ffi_status!({
        from_caller!(add_attribute(
            builder,
            name,
            name_len,
            category,
            category_len,
            |n, c| { AttributeSpec::integer(n, c, min, max) }
        ))
    })
}

/// Adds a boolean attribute.
///
/// # Safety
/// `builder` must be a live builder used by no other thread; each string
/// must point to its length in readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_attribute_boolean(
    builder: *mut privseg_policy_builder,
    name: *const c_char,
    name_len: usize,
    category: *const c_char,
    category_len: usize,
) -> privseg_status {
    ffi_status!({
        from_caller!(add_attribute(
            builder,
            name,
            name_len,
            category,
            category_len,
            AttributeSpec::boolean,
        ))
    })
}

/// Adds a timestamp attribute (values are RFC 3339 strings).
///
/// # Safety
/// `builder` must be a live builder used by no other thread; each string
/// must point to its length in readable bytes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_attribute_timestamp(
    builder: *mut privseg_policy_builder,
    name: *const c_char,
    name_len: usize,
    category: *const c_char,
    category_len: usize,
) -> privseg_status {
    ffi_status!({
        from_caller!(add_attribute(
            builder,
            name,
            name_len,
            category,
            category_len,
            AttributeSpec::timestamp,
        ))
    })
}

/// Adds a purpose: its dotted key, its lawful basis (a `privseg_basis`
/// value), the data categories it may use, the notice versions whose
/// consents it accepts, `PRIVSEG_PURPOSE_*` flags, and how long a consent
/// stays valid in days (0 for no limit).
///
/// # Safety
/// `builder` must be a live builder used by no other thread; `key` must point
/// to `key_len` readable bytes; `categories` and `notices` must point to
/// their counts of `privseg_str` (or be NULL when the count is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_purpose(
    builder: *mut privseg_policy_builder,
    key: *const c_char,
    key_len: usize,
    basis: u32,
    categories: *const privseg_str,
    category_count: usize,
    notices: *const privseg_str,
    notice_count: usize,
    flags: u32,
    consent_validity_days: u32,
) -> privseg_status {
    ffi_status!({
        let key = from_caller!(str_arg(key, key_len, "key"))?;
        let basis = basis_of(basis)?;
        let categories = from_caller!(str_list(categories, category_count, "categories"))?;
        let notices = from_caller!(str_list(notices, notice_count, "notices"))?;
        check_flags(
            flags,
            PRIVSEG_PURPOSE_EMAIL
                | PRIVSEG_PURPOSE_SOFT_OPT_IN
                | PRIVSEG_PURPOSE_SALE_SHARE
                | PRIVSEG_PURPOSE_SENSITIVE_NECESSARY
                | PRIVSEG_PURPOSE_RESTRICTION_EXEMPT,
            "purpose",
        )?;
        if flags & PRIVSEG_PURPOSE_SOFT_OPT_IN != 0 && flags & PRIVSEG_PURPOSE_EMAIL == 0 {
            return Err(FfiError::arg(
                "PRIVSEG_PURPOSE_SOFT_OPT_IN needs PRIVSEG_PURPOSE_EMAIL",
            ));
        }
        let mut p = PurposeSpec::new(key, basis);
        for c in categories {
            p = p.allow(c);
        }
        if !notices.is_empty() {
            p = p.notice_versions(&notices);
        }
        if flags & PRIVSEG_PURPOSE_EMAIL != 0 {
            p = p.email(flags & PRIVSEG_PURPOSE_SOFT_OPT_IN != 0);
        }
        if flags & PRIVSEG_PURPOSE_SALE_SHARE != 0 {
            p = p.sale_share();
        }
        if flags & PRIVSEG_PURPOSE_SENSITIVE_NECESSARY != 0 {
            p = p.sensitive_necessary();
        }
        if flags & PRIVSEG_PURPOSE_RESTRICTION_EXEMPT != 0 {
            p = p.restriction_exempt();
        }
        if consent_validity_days != 0 {
            p = p.consent_validity_days(consent_validity_days);
        }
        from_caller!(with_builder(builder, |b| b.purpose(p)))
    })
}

/// Adds a role: its name (an identifier), the purposes (keys or prefixes,
/// such as `marketing`) that its purpose permissions apply to, and
/// `PRIVSEG_PERMISSION_*` bits. `PRIVSEG_PERMISSION_COUNT`, `_MEMBER_IDS`
/// and `_EXPLAIN` are granted for each listed purpose; `_SUBJECTS`,
/// `_READ_AUDIT` and `_ADMINISTER` stand alone. Nothing is granted by
/// default. Unknown bits, purposes without a purpose permission, or a
/// purpose permission without purposes give
/// `PRIVSEG_STATUS_INVALID_ARGUMENT`; a purpose that matches no declared
/// purpose is refused when the policy is built. Export permissions (the
/// recipients a role may export to) are given in the policy's JSON only.
///
/// Returns `PRIVSEG_STATUS_ALREADY_USED` after the builder was built.
///
/// # Safety
/// `builder` must be a live builder used by no other thread; `name` must
/// point to `name_len` readable bytes; `purposes` must point to
/// `purpose_count` `privseg_str` (or be NULL when `purpose_count` is 0).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_role(
    builder: *mut privseg_policy_builder,
    name: *const c_char,
    name_len: usize,
    purposes: *const privseg_str,
    purpose_count: usize,
    permissions: u32,
) -> privseg_status {
    ffi_status!({
        let name = from_caller!(str_arg(name, name_len, "name"))?;
        let purposes = from_caller!(str_list(purposes, purpose_count, "purposes"))?;
        check_flags(
            permissions,
            PURPOSE_PERMISSIONS
                | PRIVSEG_PERMISSION_SUBJECTS
                | PRIVSEG_PERMISSION_READ_AUDIT
                | PRIVSEG_PERMISSION_ADMINISTER,
            "permission",
        )?;
        let scoped = permissions & PURPOSE_PERMISSIONS != 0;
        if scoped && purposes.is_empty() {
            return Err(FfiError::arg(
                "PRIVSEG_PERMISSION_COUNT, _MEMBER_IDS and _EXPLAIN need at least one purpose",
            ));
        }
        if !scoped && !purposes.is_empty() {
            return Err(FfiError::arg(
                "purposes are given but no PRIVSEG_PERMISSION_COUNT, _MEMBER_IDS or _EXPLAIN applies to them",
            ));
        }
        let list = |bit: u32| -> Vec<String> {
            if permissions & bit != 0 {
                purposes.iter().map(|p| p.to_string()).collect()
            } else {
                Vec::new()
            }
        };
        let role = RoleSpec {
            name: name.into(),
            count: list(PRIVSEG_PERMISSION_COUNT),
            member_ids: list(PRIVSEG_PERMISSION_MEMBER_IDS),
            explain: list(PRIVSEG_PERMISSION_EXPLAIN),
            export: Vec::new(),
            subjects: permissions & PRIVSEG_PERMISSION_SUBJECTS != 0,
            read_audit: permissions & PRIVSEG_PERMISSION_READ_AUDIT != 0,
            administer: permissions & PRIVSEG_PERMISSION_ADMINISTER != 0,
        };
        from_caller!(with_builder(builder, |b| b.role(role)))
    })
}

/// Validates and builds the policy. This uses the builder up, whether it
/// succeeds or not: any later call on it returns
/// `PRIVSEG_STATUS_ALREADY_USED` (it must still be freed).
///
/// On success `*policy_out` receives a new policy reference; on failure
/// `*err_out`, when `err_out` is not NULL, receives an error object listing
/// every problem.
///
/// # Safety
/// `builder` must be a live builder used by no other thread; `policy_out`
/// must point to a writable pointer; `err_out` must be NULL or point to a
/// writable pointer.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn privseg_policy_builder_build(
    builder: *mut privseg_policy_builder,
    policy_out: *mut *const privseg_policy,
    err_out: *mut *mut privseg_error,
) -> privseg_status {
    ffi_status!({
        let state = try_mut_from_ptr!(builder)?;
        non_null(policy_out, "policy_out")?;
        let b = state.take().ok_or_else(|| {
            FfiError::new(
                privseg_status::AlreadyUsed,
                "this policy builder was already built",
            )
        })?;
        match b.build() {
            Ok(p) => from_caller!(write_out(policy_out, policy_out_arc(p))),
            Err(e) => Err(from_caller!(give_error(ErrorObject::from(&e), err_out))),
        }
    })
}
