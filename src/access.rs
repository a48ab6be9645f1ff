//! Actors and access control.
//!
//! Every call on an [`crate::Engine`] is made by an [`Actor`]: a user or
//! service id, authenticated by the host, with the roles the host assigns.
//! The policy's roles say what each may do; a role has nothing until it is
//! granted, and an actor has only what its roles grant. A refusal names the
//! actor, the permission and the purpose or recipient, and is recorded in
//! the audit log.

use std::fmt;

use crate::policy::{Policy, covers};

/// Who makes a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Actor {
    id: String,
    roles: Vec<String>,
}

impl Actor {
    /// An actor with these roles.
    pub fn new(id: &str, roles: &[&str]) -> Actor {
        Actor {
            id: id.into(),
            roles: roles.iter().map(|r| r.to_string()).collect(),
        }
    }
    /// Its id.
    pub fn id(&self) -> &str {
        &self.id
    }
    /// Its roles.
    pub fn roles(&self) -> &[String] {
        &self.roles
    }
}

/// Something an actor may be allowed to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permission<'a> {
    /// Evaluate segments of a purpose for counts and aggregates.
    Count(&'a str),
    /// See the member ids of segments of a purpose.
    MemberIds(&'a str),
    /// Explain a subject's membership in segments of a purpose.
    Explain(&'a str),
    /// Export to a recipient.
    Export(&'a str),
    /// Add, change and erase subjects, record their events, read their data.
    Subjects,
    /// Read the audit log and compliance reports.
    ReadAudit,
    /// Change the policy, run fairness audits.
    Administer,
}

impl fmt::Display for Permission<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Permission::Count(p) => write!(f, "count for purpose {p}"),
            Permission::MemberIds(p) => write!(f, "member_ids for purpose {p}"),
            Permission::Explain(p) => write!(f, "explain for purpose {p}"),
            Permission::Export(r) => write!(f, "export to recipient {r}"),
            Permission::Subjects => write!(f, "subjects"),
            Permission::ReadAudit => write!(f, "read_audit"),
            Permission::Administer => write!(f, "administer"),
        }
    }
}

/// A refused call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access refused: actor {actor:?} lacks permission {permission}{}", if self.unknown_roles.is_empty() { String::new() } else { format!(" (unknown roles: {})", self.unknown_roles.join(", ")) })]
pub struct AccessError {
    /// The actor.
    pub actor: String,
    /// The permission, as text (names the purpose or recipient).
    pub permission: String,
    /// Roles the actor claimed that the policy does not define.
    pub unknown_roles: Vec<String>,
}

/// Does the actor have the permission under this policy?
pub fn authorize(
    policy: &Policy,
    actor: &Actor,
    permission: Permission<'_>,
) -> Result<(), AccessError> {
    let mut unknown = Vec::new();
    let mut granted = false;
    for name in &actor.roles {
        let Some(role) = policy.role(name) else {
            unknown.push(name.clone());
            continue;
        };
        let any = |list: &[String], key: &str| list.iter().any(|p| covers(p, key));
        granted |= match permission {
            Permission::Count(p) => any(&role.count, p),
            Permission::MemberIds(p) => any(&role.member_ids, p),
            Permission::Explain(p) => any(&role.explain, p),
            Permission::Export(r) => role.export.iter().any(|x| x == r),
            Permission::Subjects => role.subjects,
            Permission::ReadAudit => role.read_audit,
            Permission::Administer => role.administer,
        };
    }
    if granted {
        Ok(())
    } else {
        Err(AccessError {
            actor: actor.id.clone(),
            permission: permission.to_string(),
            unknown_roles: unknown,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::policy::*;

    #[test]
    fn least_privilege() {
        let p = PolicyBuilder::new("X")
            .category(CategorySpec::new("user.c"))
            .purpose(
                PurposeSpec::new("marketing.email", LawfulBasis::LegitimateInterests).allow("user"),
            )
            .purpose(PurposeSpec::new("analytics", LawfulBasis::LegitimateInterests).allow("user"))
            .role(RoleSpec {
                name: "marketer".into(),
                count: vec!["marketing".into()],
                ..RoleSpec::default()
            })
            .role(RoleSpec {
                name: "nobody".into(),
                ..RoleSpec::default()
            })
            .build()
            .unwrap();
        let m = Actor::new("ann", &["marketer"]);
        assert!(authorize(&p, &m, Permission::Count("marketing.email")).is_ok());
        assert!(authorize(&p, &m, Permission::Count("analytics")).is_err());
        assert!(authorize(&p, &m, Permission::MemberIds("marketing.email")).is_err());
        let n = Actor::new("bob", &["nobody", "ghost"]);
        for perm in [
            Permission::Count("marketing.email"),
            Permission::Subjects,
            Permission::ReadAudit,
            Permission::Administer,
            Permission::Export("x"),
        ] {
            let e = authorize(&p, &n, perm).unwrap_err();
            assert_eq!(e.actor, "bob");
            assert_eq!(e.unknown_roles, vec!["ghost".to_string()]);
        }
        let e = authorize(&p, &m, Permission::MemberIds("marketing.email")).unwrap_err();
        assert_eq!(
            e.to_string(),
            "access refused: actor \"ann\" lacks permission member_ids for purpose marketing.email"
        );
    }
}
