//! Where a new session goes: the live member with room and the lowest load relative to its
//! capacity. Pure, so every node answers the same question from its own member list.

use std::cmp::Ordering;

use crate::membership::{Liveness, Member};

/// The best member for a new session, or None when no live member has room. Ties go to the
/// first name, so nodes with equal views agree.
pub fn choose<'a>(members: impl IntoIterator<Item = &'a Member>) -> Option<&'a Member> {
    members
        .into_iter()
        .filter(|m| m.state == Liveness::Alive && m.load < m.capacity)
        .min_by(|a, b| by_load_ratio(a, b).then_with(|| a.name.cmp(&b.name)))
}

/// Compares load/capacity without floats: a.load/a.cap vs b.load/b.cap as cross products.
fn by_load_ratio(a: &Member, b: &Member) -> Ordering {
    let left = a.load as u128 * b.capacity as u128;
    let right = b.load as u128 * a.capacity as u128;
    left.cmp(&right)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    fn member(name: &str, state: Liveness, load: usize, capacity: usize) -> Member {
        Member {
            name: name.into(),
            role: Role::Worker,
            state,
            api: format!("{name}:8080"),
            listener: format!("{name}:9100"),
            capacity,
            load,
            last_heard_ms_ago: 0,
        }
    }

    fn chosen(members: &[Member]) -> Option<&str> {
        choose(members).map(|m| m.name.as_str())
    }

    #[test]
    fn the_lowest_load_ratio_wins() {
        use Liveness::Alive;
        let members = [
            member("a", Alive, 5, 10),   // 0.5
            member("b", Alive, 30, 100), // 0.3
            member("c", Alive, 2, 4),    // 0.5
        ];
        assert_eq!(chosen(&members), Some("b"));
    }

    #[test]
    fn ties_go_to_the_first_name() {
        use Liveness::Alive;
        let members = [member("w2", Alive, 1, 10), member("w1", Alive, 2, 20)];
        assert_eq!(chosen(&members), Some("w1"));
    }

    #[test]
    fn dead_and_full_members_are_never_chosen() {
        use Liveness::{Alive, Dead};
        let members = [
            member("a", Dead, 0, 10),
            member("b", Alive, 10, 10),
            member("c", Alive, 9, 10),
            member("d", Alive, 0, 0),
        ];
        assert_eq!(chosen(&members), Some("c"));
        assert_eq!(chosen(&members[..2]), None);
        assert_eq!(chosen(&[]), None);
    }
}
