use crate::ids::{AgentId, ContactId, OrganisationId, TeamId};
use crate::ticket::{Tier, string_enum};
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

string_enum!(
    /// Admins manage configuration; agents work tickets.
    Role { Admin = "admin", Agent = "agent" }
);

/// A customer: whoever asks for help. Identified by email.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contact {
    pub id: ContactId,
    pub email: String,
    pub name: String,
    pub organisation: Option<OrganisationId>,
    pub phone: Option<String>,
    pub portal_access: bool,
    pub created_at: Timestamp,
}

/// A customer company. For an MSP, a client; the plan says which tiers and
/// SLA it is entitled to. Contacts whose email domain is listed join it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: OrganisationId,
    pub name: String,
    pub plan: String,
    pub domains: Vec<String>,
    pub created_at: Timestamp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub id: AgentId,
    pub email: String,
    pub name: String,
    pub role: Role,
    /// Agents work tier 1–3; tier 0 is self-service and has no people.
    pub tier: Tier,
    pub teams: Vec<TeamId>,
    /// Most open tickets this agent should hold at once.
    pub capacity: i64,
    pub available: bool,
    pub active: bool,
    pub created_at: Timestamp,
}

impl Agent {
    pub fn as_ref(&self) -> AgentRef {
        AgentRef {
            id: self.id,
            tier: self.tier,
            active: self.active,
        }
    }
}

/// What the core needs to know to accept an agent as assignee.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentRef {
    pub id: AgentId,
    pub tier: Tier,
    pub active: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub description: String,
}

/// Agents belong to tiers 1–3.
pub fn agent_tier(level: i64) -> Result<Tier, String> {
    match Tier::new(level) {
        Ok(t) if t >= Tier::ONE => Ok(t),
        _ => Err(format!("an agent's tier must be 1, 2 or 3, not {level}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agent_tiers_exclude_self_service() {
        assert!(agent_tier(0).is_err());
        assert_eq!(agent_tier(3), Ok(Tier::THREE));
        assert!(agent_tier(4).is_err());
        assert_eq!("admin".parse::<Role>(), Ok(Role::Admin));
        assert!("root".parse::<Role>().is_err());
    }
}
