//! Input normalisation shared by every backend, so SQLite and PostgreSQL
//! accept and refuse exactly the same things.

use crate::error::{Result, StoreError};
use crate::model::*;
use tierdesk_core::validate::{self, FieldError, NAME_MAX_CHARS};

fn check(field: &'static str) -> impl FnOnce(FieldError) -> StoreError {
    move |e| StoreError::invalid(field, e.to_string())
}

pub const PLAN_MAX_CHARS: usize = 64;
pub const DESCRIPTION_MAX_CHARS: usize = 2_000;

fn description(raw: &str) -> Result<String> {
    let value = raw.trim();
    if value.chars().count() > DESCRIPTION_MAX_CHARS {
        return Err(StoreError::invalid(
            "description",
            FieldError::TooLong(DESCRIPTION_MAX_CHARS).to_string(),
        ));
    }
    Ok(value.to_string())
}

fn phone(raw: &str) -> Result<Option<String>> {
    let value = raw.trim();
    if value.is_empty() {
        return Ok(None);
    }
    validate::single_line(value, 40)
        .map(Some)
        .map_err(check("phone"))
}

/// A domain an organisation claims, such as `acme.example`.
pub fn domain(raw: &str) -> Result<String> {
    let value = raw.trim().trim_start_matches('@').to_lowercase();
    // Reuse the email rules for the domain half.
    validate::email(&format!("x@{value}"))
        .map_err(|_| StoreError::invalid("domains", format!("{raw:?} is not a domain")))?;
    Ok(value)
}

pub fn new_contact(mut c: NewContact) -> Result<NewContact> {
    c.email = validate::email(&c.email).map_err(check("email"))?;
    c.name = validate::single_line(&c.name, NAME_MAX_CHARS).map_err(check("name"))?;
    c.phone = match c.phone.as_deref() {
        Some(p) => phone(p)?,
        None => None,
    };
    Ok(c)
}

pub fn contact_patch(mut p: ContactPatch) -> Result<ContactPatch> {
    if let Some(email) = &p.email {
        p.email = Some(validate::email(email).map_err(check("email"))?);
    }
    if let Some(name) = &p.name {
        p.name = Some(validate::single_line(name, NAME_MAX_CHARS).map_err(check("name"))?);
    }
    if let Some(Some(number)) = &p.phone {
        p.phone = Some(phone(number)?);
    }
    Ok(p)
}

fn domains(list: &[String]) -> Result<Vec<String>> {
    let mut out: Vec<String> = list.iter().map(|d| domain(d)).collect::<Result<_>>()?;
    out.sort();
    out.dedup();
    Ok(out)
}

pub fn new_organisation(mut o: NewOrganisation) -> Result<NewOrganisation> {
    o.name = validate::single_line(&o.name, NAME_MAX_CHARS).map_err(check("name"))?;
    o.plan = validate::single_line(&o.plan, PLAN_MAX_CHARS).map_err(check("plan"))?;
    o.domains = domains(&o.domains)?;
    Ok(o)
}

pub fn organisation_patch(mut p: OrganisationPatch) -> Result<OrganisationPatch> {
    if let Some(name) = &p.name {
        p.name = Some(validate::single_line(name, NAME_MAX_CHARS).map_err(check("name"))?);
    }
    if let Some(plan) = &p.plan {
        p.plan = Some(validate::single_line(plan, PLAN_MAX_CHARS).map_err(check("plan"))?);
    }
    if let Some(list) = &p.domains {
        p.domains = Some(domains(list)?);
    }
    Ok(p)
}

fn capacity(value: i64) -> Result<i64> {
    if (0..=10_000).contains(&value) {
        Ok(value)
    } else {
        Err(StoreError::invalid(
            "capacity",
            "must be between 0 and 10000",
        ))
    }
}

fn agent_tier(tier: tierdesk_core::Tier) -> Result<tierdesk_core::Tier> {
    tierdesk_core::people::agent_tier(i64::from(tier.level()))
        .map_err(|m| StoreError::invalid("tier", m))
}

pub fn new_agent(mut a: NewAgent) -> Result<NewAgent> {
    a.email = validate::email(&a.email).map_err(check("email"))?;
    a.name = validate::single_line(&a.name, NAME_MAX_CHARS).map_err(check("name"))?;
    a.tier = agent_tier(a.tier)?;
    a.capacity = capacity(a.capacity)?;
    a.teams.sort();
    a.teams.dedup();
    Ok(a)
}

pub fn agent_patch(mut p: AgentPatch) -> Result<AgentPatch> {
    if let Some(email) = &p.email {
        p.email = Some(validate::email(email).map_err(check("email"))?);
    }
    if let Some(name) = &p.name {
        p.name = Some(validate::single_line(name, NAME_MAX_CHARS).map_err(check("name"))?);
    }
    if let Some(tier) = p.tier {
        p.tier = Some(agent_tier(tier)?);
    }
    if let Some(c) = p.capacity {
        p.capacity = Some(capacity(c)?);
    }
    if let Some(teams) = &mut p.teams {
        teams.sort();
        teams.dedup();
    }
    Ok(p)
}

pub fn new_team(mut t: NewTeam) -> Result<NewTeam> {
    t.name = validate::single_line(&t.name, NAME_MAX_CHARS).map_err(check("name"))?;
    t.description = description(&t.description)?;
    Ok(t)
}

pub fn team_patch(mut p: TeamPatch) -> Result<TeamPatch> {
    if let Some(name) = &p.name {
        p.name = Some(validate::single_line(name, NAME_MAX_CHARS).map_err(check("name"))?);
    }
    if let Some(d) = &p.description {
        p.description = Some(description(d)?);
    }
    Ok(p)
}

pub fn new_tag(mut t: NewTag) -> Result<NewTag> {
    t.description = description(&t.description)?;
    Ok(t)
}

pub fn tag_patch(mut p: TagPatch) -> Result<TagPatch> {
    if let Some(d) = &p.description {
        p.description = Some(description(d)?);
    }
    Ok(p)
}

/// A view's query must parse; the time only resolves relative dates, which
/// are stored as written and resolved again each time the view runs.
fn view_query(query: &str) -> Result<String> {
    let query = query.trim().to_string();
    tierdesk_core::query::Query::parse(&query, tierdesk_core::Timestamp(0))
        .map_err(|e| StoreError::invalid("query", e.to_string()))?;
    Ok(query)
}

pub fn new_view(mut v: NewView) -> Result<NewView> {
    v.name = validate::single_line(&v.name, NAME_MAX_CHARS).map_err(check("name"))?;
    v.query = view_query(&v.query)?;
    Ok(v)
}

pub fn view_patch(mut p: ViewPatch) -> Result<ViewPatch> {
    if let Some(name) = &p.name {
        p.name = Some(validate::single_line(name, NAME_MAX_CHARS).map_err(check("name"))?);
    }
    if let Some(query) = &p.query {
        p.query = Some(view_query(query)?);
    }
    Ok(p)
}

/// Refuses actions the core finds wrong, naming the first problem's path
/// (the API validates first and lists them all).
fn macro_actions(actions: &tierdesk_core::macros::MacroActions) -> Result<()> {
    match tierdesk_core::macros::validate(actions).into_iter().next() {
        None => Ok(()),
        Some(e) => Err(StoreError::invalid(
            "actions",
            if e.path.is_empty() {
                e.message
            } else {
                format!("{}: {}", e.path, e.message)
            },
        )),
    }
}

pub fn new_macro(mut m: NewMacro) -> Result<NewMacro> {
    m.name = validate::single_line(&m.name, NAME_MAX_CHARS).map_err(check("name"))?;
    m.description = description(&m.description)?;
    macro_actions(&m.actions)?;
    Ok(m)
}

pub fn macro_patch(mut p: MacroPatch) -> Result<MacroPatch> {
    if let Some(name) = &p.name {
        p.name = Some(validate::single_line(name, NAME_MAX_CHARS).map_err(check("name"))?);
    }
    if let Some(d) = &p.description {
        p.description = Some(description(d)?);
    }
    if let Some(actions) = &p.actions {
        macro_actions(actions)?;
    }
    Ok(p)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn domains_are_normalised_and_checked() {
        assert_eq!(domain("@Acme.Example").unwrap(), "acme.example");
        assert!(domain("not a domain").is_err());
        let o = new_organisation(NewOrganisation {
            name: " Acme ".into(),
            plan: "gold".into(),
            domains: vec!["b.io".into(), "B.io".into(), "a.io".into()],
        })
        .unwrap();
        assert_eq!(o.name, "Acme");
        assert_eq!(o.domains, ["a.io", "b.io"]);
    }

    #[test]
    fn agents_need_a_working_tier_and_sane_capacity() {
        let agent = |tier: u8, capacity| NewAgent {
            email: "a@b.io".into(),
            name: "A".into(),
            role: tierdesk_core::Role::Agent,
            tier: tierdesk_core::Tier::new(i64::from(tier)).unwrap(),
            teams: vec![],
            capacity,
            available: true,
            password_hash: None,
        };
        assert!(matches!(
            new_agent(agent(0, 5)),
            Err(StoreError::Invalid { field: "tier", .. })
        ));
        assert!(matches!(
            new_agent(agent(2, -1)),
            Err(StoreError::Invalid {
                field: "capacity",
                ..
            })
        ));
        assert!(new_agent(agent(3, 20)).is_ok());
    }
}
