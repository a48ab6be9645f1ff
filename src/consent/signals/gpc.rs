//! Global Privacy Control (`Sec-GPC` request header).
//!
//! Per the W3C GPC specification the header value `1` signals that the user
//! does not want their data sold or shared; any other value must be ignored.
//! This module treats a value as a signal only when it is exactly `"1"` after
//! trimming ASCII/Unicode whitespace at both ends: `"1"`, `" 1 "` and `"1\t"`
//! are signals; `"0"`, `"true"`, `"01"`, `"1.0"` and `""` are not.

/// Interprets one `Sec-GPC` header value.
///
/// ```
/// use privseg::consent::signals::gpc::gpc_from_header;
/// assert!(gpc_from_header(" 1 "));
/// assert!(!gpc_from_header("true"));
/// ```
pub fn gpc_from_header(value: &str) -> bool {
    value.trim() == "1"
}

/// Interprets several `Sec-GPC` header values (a request may carry the header
/// more than once): one value of `1` is enough.
pub fn gpc_from_headers<'a, I>(values: I) -> bool
where
    I: IntoIterator<Item = &'a str>,
{
    values.into_iter().any(gpc_from_header)
}
