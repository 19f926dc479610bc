//! Per-client-address limits on the endpoints anyone may call that cost CPU
//! or open tickets: the answer bot, knowledge-base search and feedback, and
//! hand-overs to a person (API, help center and chat widget alike). Signed-in
//! agents are never limited here; everyone else shares one allowance per
//! address, whichever door they come through.

use crate::error::{ApiError, ApiResult};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use std::net::IpAddr;
use std::num::NonZeroU32;

/// Allowances per client address; 0 turns a limit off (benchmarks do).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PublicLimitConfig {
    /// Questions to the answer bot.
    pub questions_per_minute: u32,
    /// Knowledge-base searches and "was this helpful?" votes.
    pub searches_per_minute: u32,
    /// Hand-overs from the bot to a person (each opens a ticket).
    pub handovers_per_hour: u32,
}

impl Default for PublicLimitConfig {
    fn default() -> Self {
        Self {
            questions_per_minute: 30,
            searches_per_minute: 120,
            handovers_per_hour: 30,
        }
    }
}

impl PublicLimitConfig {
    /// No limits at all.
    pub const OFF: Self = Self {
        questions_per_minute: 0,
        searches_per_minute: 0,
        handovers_per_hour: 0,
    };
}

/// What a request spends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    Question,
    Search,
    Handover,
}

/// Above this many tracked addresses, forget the ones back to full allowance.
const RETAIN_THRESHOLD: usize = 10_000;

#[derive(Debug)]
pub struct PublicLimits {
    questions: Option<DefaultKeyedRateLimiter<IpAddr>>,
    searches: Option<DefaultKeyedRateLimiter<IpAddr>>,
    handovers: Option<DefaultKeyedRateLimiter<IpAddr>>,
}

impl PublicLimits {
    pub fn new(config: PublicLimitConfig) -> Self {
        let keyed = |quota: Option<Quota>| quota.map(RateLimiter::keyed);
        Self {
            questions: keyed(NonZeroU32::new(config.questions_per_minute).map(Quota::per_minute)),
            searches: keyed(NonZeroU32::new(config.searches_per_minute).map(Quota::per_minute)),
            handovers: keyed(NonZeroU32::new(config.handovers_per_hour).map(Quota::per_hour)),
        }
    }

    /// Takes one `spend` from `ip`'s allowance, or refuses with 429 and how
    /// long to wait. Without an address (in-process tests) nothing is limited.
    pub fn check(&self, spend: Spend, ip: Option<IpAddr>) -> ApiResult<()> {
        let limiter = match spend {
            Spend::Question => &self.questions,
            Spend::Search => &self.searches,
            Spend::Handover => &self.handovers,
        };
        let (Some(limiter), Some(ip)) = (limiter, ip) else {
            return Ok(());
        };
        if limiter.len() > RETAIN_THRESHOLD {
            limiter.retain_recent();
        }
        limiter.check_key(&ip).map_err(|not_until| {
            let wait = not_until
                .wait_time_from(DefaultClock::default().now())
                .as_secs()
                .max(1);
            let what = match spend {
                Spend::Question => "questions",
                Spend::Search => "searches",
                Spend::Handover => "requests for a person",
            };
            let mut error = ApiError::rate_limited(wait);
            error.detail = format!("too many {what} from your address; try again in {wait} s");
            error
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_spend_has_its_own_allowance_per_address() {
        let limits = PublicLimits::new(PublicLimitConfig {
            questions_per_minute: 2,
            searches_per_minute: 1,
            handovers_per_hour: 1,
        });
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        let b = Some(IpAddr::from([192, 0, 2, 2]));
        assert!(limits.check(Spend::Question, a).is_ok());
        assert!(limits.check(Spend::Question, a).is_ok());
        let refused = limits.check(Spend::Question, a).err();
        let refused = refused.map(|e| (e.status.as_u16(), e.retry_after.is_some()));
        assert_eq!(refused, Some((429, true)));
        assert!(limits.check(Spend::Question, b).is_ok(), "another address");
        assert!(limits.check(Spend::Search, a).is_ok(), "another spend");
        assert!(limits.check(Spend::Search, a).is_err());
        assert!(limits.check(Spend::Handover, a).is_ok());
        assert!(limits.check(Spend::Handover, a).is_err());
        assert!(limits.check(Spend::Question, None).is_ok(), "no address");
    }

    #[test]
    fn zero_turns_a_limit_off() {
        let limits = PublicLimits::new(PublicLimitConfig::OFF);
        let a = Some(IpAddr::from([192, 0, 2, 1]));
        for _ in 0..1000 {
            assert!(limits.check(Spend::Question, a).is_ok());
        }
    }
}
