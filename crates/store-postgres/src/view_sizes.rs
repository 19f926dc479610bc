//! Which views select few tickets, remembered for a while.
//!
//! Choosing how to read a view's page (among its matches, or by walking
//! its order; see `search::selects_few`) costs a count of up to
//! `few_matches` index entries: 1.5 ms for a view of 5,753 tickets, three
//! times the page it chooses for. A view's size changes slowly, and either
//! reading returns the same tickets, so the choice is kept for
//! [`REMEMBERED_FOR`]: a stale one costs speed for that long, never a
//! wrong page.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a view's size class is trusted.
pub(crate) const REMEMBERED_FOR: Duration = Duration::from_secs(30);

/// Views remembered at most; past that, expired choices are dropped, and
/// if none has expired, all of them (queries with relative dates make a
/// new key each time they are parsed).
const MOST_REMEMBERED: usize = 4_096;

#[derive(Default)]
pub(crate) struct ViewSizes {
    few: Mutex<HashMap<String, (bool, Instant)>>,
}

impl ViewSizes {
    /// Whether the view keyed `key` selected few tickets when last counted,
    /// if that was recent.
    pub(crate) fn selects_few(&self, key: &str, now: Instant) -> Option<bool> {
        let few = self.few.lock().unwrap_or_else(|e| e.into_inner());
        few.get(key)
            .filter(|(_, at)| now.duration_since(*at) < REMEMBERED_FOR)
            .map(|(few, _)| *few)
    }

    pub(crate) fn remember(&self, key: String, selects_few: bool, now: Instant) {
        let mut few = self.few.lock().unwrap_or_else(|e| e.into_inner());
        if few.len() >= MOST_REMEMBERED && !few.contains_key(&key) {
            few.retain(|_, (_, at)| now.duration_since(*at) < REMEMBERED_FOR);
            if few.len() >= MOST_REMEMBERED {
                few.clear();
            }
        }
        few.insert(key, (selects_few, now));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_choice_is_kept_until_it_expires() {
        let sizes = ViewSizes::default();
        let start = Instant::now();
        assert_eq!(sizes.selects_few("assignee:me", start), None);
        sizes.remember("assignee:me".into(), true, start);
        sizes.remember("tier:1".into(), false, start);
        assert_eq!(sizes.selects_few("assignee:me", start), Some(true));
        assert_eq!(sizes.selects_few("tier:1", start), Some(false));
        let later = start + REMEMBERED_FOR;
        assert_eq!(sizes.selects_few("assignee:me", later), None);
        sizes.remember("assignee:me".into(), false, later);
        assert_eq!(sizes.selects_few("assignee:me", later), Some(false));
    }

    #[test]
    fn the_map_stays_bounded_and_keeps_fresh_choices_when_it_can() {
        let sizes = ViewSizes::default();
        let start = Instant::now();
        for i in 0..MOST_REMEMBERED {
            sizes.remember(format!("old {i}"), true, start);
        }
        let later = start + REMEMBERED_FOR;
        sizes.remember("fresh".into(), true, later);
        let len = |s: &ViewSizes| s.few.lock().map(|m| m.len()).unwrap_or_default();
        assert_eq!(len(&sizes), 1, "expired choices dropped");
        for i in 1..MOST_REMEMBERED {
            sizes.remember(format!("new {i}"), false, later);
        }
        assert_eq!(len(&sizes), MOST_REMEMBERED);
        sizes.remember("one more".into(), true, later);
        assert_eq!(len(&sizes), 1, "nothing expired: all dropped");
        assert_eq!(sizes.selects_few("one more", later), Some(true));
    }
}
