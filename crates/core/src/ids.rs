//! Typed ids so a contact id can never be passed where an agent id belongs.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! id_type {
    ($($name:ident),* $(,)?) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
        #[serde(transparent)]
        pub struct $name(pub i64);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }
    )*};
}

id_type!(
    TicketId,
    ContactId,
    OrganisationId,
    AgentId,
    TeamId,
    TagId,
    EventId,
    RuleId,
    JobId,
    CalendarId,
    SlaPolicyId,
    RunbookId,
    TemplateId,
    ArticleId,
    AttachmentId
);
