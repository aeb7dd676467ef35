//! Which member a channel code's contact way holds for the next add. WeCom picks at
//! random among a multi-member way's members, so siyu keeps one member on the way and
//! moves it on after each add: primary members in turn (round-robin, or in proportion
//! to their weights), none past their daily capacity; when every primary is full, the
//! backup members; outside the code's working hours, the after-hours members (else the
//! backup ones). When nobody has room left the code still routes (a full member is
//! better than a lost customer) and says it overflowed.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

use super::{CodeMember, CodeMemberRole, Routing, RoutingMode};
use crate::ids::StaffId;

/// Why a member was chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RouteReason {
    /// A primary member's turn.
    Primary,
    /// Every primary member was full: a backup member.
    Backup,
    /// Outside working hours: an after-hours (or backup) member.
    AfterHours,
    /// Everyone was full: the member least over their capacity.
    Overflow,
}

impl RouteReason {
    pub fn as_str(self) -> &'static str {
        match self {
            RouteReason::Primary => "primary",
            RouteReason::Backup => "backup",
            RouteReason::AfterHours => "after_hours",
            RouteReason::Overflow => "overflow",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [
            RouteReason::Primary,
            RouteReason::Backup,
            RouteReason::AfterHours,
            RouteReason::Overflow,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }
}

/// The member chosen and why.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub staff_id: StaffId,
    pub reason: RouteReason,
}

/// When the choice is made, in the tenant's time zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LocalTime {
    /// 1 Monday … 7 Sunday.
    pub weekday: u8,
    /// Minutes after midnight.
    pub minute: u32,
}

impl LocalTime {
    /// The tenant's local weekday and minute at `ms`.
    pub fn at(zone: crate::time::TimeZone, ms: i64) -> LocalTime {
        let day = zone.day_of(ms);
        // day 0 (1970-01-01) was a Thursday
        let weekday = (day + 3).rem_euclid(7) as u8 + 1;
        let minute = ((zone.local_ms(ms) - day * 86_400_000) / 60_000) as u32;
        LocalTime { weekday, minute }
    }
}

/// What the choice looks at.
#[derive(Debug, Clone, Copy)]
pub struct RouteInput<'a> {
    pub members: &'a [CodeMember],
    pub routing: &'a Routing,
    /// The member the last add went to (the one the way holds now).
    pub last: Option<StaffId>,
    /// Adds through this code today, per member.
    pub adds_today: &'a HashMap<StaffId, u32>,
    pub now: LocalTime,
}

impl RouteInput<'_> {
    fn adds(&self, m: &CodeMember) -> u32 {
        self.adds_today.get(&m.staff_id).copied().unwrap_or(0)
    }

    fn has_room(&self, m: &CodeMember) -> bool {
        m.daily_capacity.is_none_or(|c| self.adds(m) < c)
    }

    fn in_hours(&self) -> bool {
        let Some(hours) = &self.routing.working_hours else {
            return true;
        };
        let Ok((start, end)) = hours.minutes() else {
            return true;
        };
        let LocalTime { weekday, minute } = self.now;
        let yesterday = if weekday == 1 { 7 } else { weekday - 1 };
        if start < end {
            hours.days.contains(&weekday) && (start..end).contains(&minute)
        } else if minute >= start {
            // a span over midnight belongs to the day it starts
            hours.days.contains(&weekday)
        } else {
            minute < end && hours.days.contains(&yesterday)
        }
    }

    fn with_role(&self, role: CodeMemberRole) -> Vec<&CodeMember> {
        self.members.iter().filter(|m| m.role == role).collect()
    }

    /// One of `pool` by the code's mode.
    fn pick(&self, pool: &[&CodeMember]) -> Option<StaffId> {
        match self.routing.mode {
            RoutingMode::RoundRobin => {
                // the first of the pool after the last one, in the code's order
                let after = self
                    .last
                    .and_then(|last| self.members.iter().position(|m| m.staff_id == last));
                let order = |m: &&&CodeMember| {
                    let at = self
                        .members
                        .iter()
                        .position(|x| x.staff_id == m.staff_id)
                        .unwrap_or(0);
                    match after {
                        Some(after) if at <= after => at + self.members.len(),
                        _ => at,
                    }
                };
                pool.iter().min_by_key(order).map(|m| m.staff_id)
            }
            RoutingMode::Weighted => {
                // the fewest adds for the weight: adds_a / w_a < adds_b / w_b, the
                // first listed on a tie; over a day the adds follow the weights
                let mut best: Option<&CodeMember> = None;
                for m in pool {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            u64::from(self.adds(m)) * u64::from(b.weight.max(1))
                                < u64::from(self.adds(b)) * u64::from(m.weight.max(1))
                        }
                    };
                    if better {
                        best = Some(m);
                    }
                }
                best.map(|m| m.staff_id)
            }
        }
    }

    /// Of `pool`, the one least over their capacity (the fewest adds past it).
    fn least_over(&self, pool: &[&CodeMember]) -> Option<StaffId> {
        pool.iter()
            .min_by_key(|m| {
                self.adds(m)
                    .saturating_sub(m.daily_capacity.unwrap_or(u32::MAX))
            })
            .map(|m| m.staff_id)
    }
}

/// The members of `pool` with room left today.
fn with_room<'m>(input: &RouteInput<'_>, pool: &[&'m CodeMember]) -> Vec<&'m CodeMember> {
    pool.iter().copied().filter(|m| input.has_room(m)).collect()
}

/// The member the way should hold for the next add; none when the code has no member.
pub fn route(input: &RouteInput<'_>) -> Option<Route> {
    let primaries = input.with_role(CodeMemberRole::Primary);
    let backups = input.with_role(CodeMemberRole::Backup);
    let after_hours = input.with_role(CodeMemberRole::AfterHours);
    let chosen =
        |pool: &[&CodeMember], reason| input.pick(pool).map(|staff_id| Route { staff_id, reason });
    let someone_off_hours = !(after_hours.is_empty() && backups.is_empty());
    if !input.in_hours() && someone_off_hours {
        let off = if after_hours.is_empty() {
            &backups
        } else {
            &after_hours
        };
        return chosen(&with_room(input, off), RouteReason::AfterHours).or_else(|| {
            input.least_over(off).map(|staff_id| Route {
                staff_id,
                reason: RouteReason::Overflow,
            })
        });
    }
    chosen(&with_room(input, &primaries), RouteReason::Primary)
        .or_else(|| chosen(&with_room(input, &backups), RouteReason::Backup))
        .or_else(|| {
            let everyone: Vec<&CodeMember> = primaries.iter().chain(&backups).copied().collect();
            input.least_over(&everyone).map(|staff_id| Route {
                staff_id,
                reason: RouteReason::Overflow,
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::acquisition::WorkingHours;

    fn member(id: i64, role: CodeMemberRole, weight: u32, capacity: Option<u32>) -> CodeMember {
        CodeMember {
            staff_id: StaffId(id),
            role,
            weight,
            daily_capacity: capacity,
        }
    }

    fn primary(id: i64) -> CodeMember {
        member(id, CodeMemberRole::Primary, 1, None)
    }

    const NOON_MONDAY: LocalTime = LocalTime {
        weekday: 1,
        minute: 12 * 60,
    };

    /// The members `adds` adds go to, each add moving the way on, as siyu does.
    fn sequence(
        members: &[CodeMember],
        routing: &Routing,
        now: LocalTime,
        adds: usize,
    ) -> Vec<(i64, RouteReason)> {
        let mut today: HashMap<StaffId, u32> = HashMap::new();
        let mut last = None;
        let mut went = Vec::new();
        for _ in 0..adds {
            let r = route(&RouteInput {
                members,
                routing,
                last,
                adds_today: &today,
                now,
            })
            .unwrap();
            went.push((r.staff_id.0, r.reason));
            *today.entry(r.staff_id).or_default() += 1;
            last = Some(r.staff_id);
        }
        went
    }

    fn ids(seq: &[(i64, RouteReason)]) -> Vec<i64> {
        seq.iter().map(|(id, _)| *id).collect()
    }

    #[test]
    fn round_robin_takes_each_primary_in_turn() {
        let members = [
            primary(1),
            primary(2),
            primary(3),
            member(9, CodeMemberRole::Backup, 1, None),
        ];
        let seq = sequence(&members, &Routing::default(), NOON_MONDAY, 7);
        assert_eq!(ids(&seq), vec![1, 2, 3, 1, 2, 3, 1]);
        assert!(seq.iter().all(|(_, r)| *r == RouteReason::Primary));
    }

    #[test]
    fn weights_share_the_adds() {
        let members = [
            member(1, CodeMemberRole::Primary, 3, None),
            member(2, CodeMemberRole::Primary, 1, None),
        ];
        let routing = Routing {
            mode: RoutingMode::Weighted,
            working_hours: None,
        };
        let seq = ids(&sequence(&members, &routing, NOON_MONDAY, 40));
        assert_eq!(seq.iter().filter(|id| **id == 1).count(), 30);
        assert_eq!(&seq[..4], &[1, 2, 1, 1]);
    }

    #[test]
    fn a_full_member_is_skipped_and_backups_take_over_when_all_are_full() {
        let members = [
            member(1, CodeMemberRole::Primary, 1, Some(2)),
            member(2, CodeMemberRole::Primary, 1, Some(1)),
            member(9, CodeMemberRole::Backup, 1, Some(2)),
        ];
        let seq = sequence(&members, &Routing::default(), NOON_MONDAY, 6);
        assert_eq!(
            seq,
            vec![
                (1, RouteReason::Primary),
                (2, RouteReason::Primary),
                (1, RouteReason::Primary),
                (9, RouteReason::Backup),
                (9, RouteReason::Backup),
                // everyone full: still routed, to the least over, and said so
                (1, RouteReason::Overflow),
            ]
        );
    }

    #[test]
    fn outside_working_hours_the_after_hours_members_take_the_adds() {
        let members = [
            primary(1),
            primary(2),
            member(7, CodeMemberRole::AfterHours, 1, None),
            member(9, CodeMemberRole::Backup, 1, None),
        ];
        let routing = Routing {
            mode: RoutingMode::RoundRobin,
            working_hours: Some(WorkingHours {
                start: "09:00".into(),
                end: "18:00".into(),
                days: vec![1, 2, 3, 4, 5],
            }),
        };
        let evening = LocalTime {
            weekday: 1,
            minute: 20 * 60,
        };
        let saturday_noon = LocalTime {
            weekday: 6,
            minute: 12 * 60,
        };
        for now in [evening, saturday_noon] {
            let seq = sequence(&members, &routing, now, 2);
            assert_eq!(
                seq,
                vec![(7, RouteReason::AfterHours), (7, RouteReason::AfterHours)]
            );
        }
        assert_eq!(
            ids(&sequence(&members, &routing, NOON_MONDAY, 3)),
            vec![1, 2, 1]
        );
        // without after-hours members, the backup ones
        let members = [primary(1), member(9, CodeMemberRole::Backup, 1, None)];
        assert_eq!(
            sequence(&members, &routing, evening, 1),
            vec![(9, RouteReason::AfterHours)]
        );
        // with neither, the primary members whatever the hour
        let members = [primary(1), primary(2)];
        assert_eq!(ids(&sequence(&members, &routing, evening, 2)), vec![1, 2]);
    }

    #[test]
    fn working_hours_over_midnight_belong_to_the_day_they_start() {
        let members = [primary(1), member(7, CodeMemberRole::AfterHours, 1, None)];
        let routing = Routing {
            mode: RoutingMode::RoundRobin,
            working_hours: Some(WorkingHours {
                start: "20:00".into(),
                end: "02:00".into(),
                days: vec![5],
            }),
        };
        let at = |weekday, hour: u32| LocalTime {
            weekday,
            minute: hour * 60,
        };
        let who = |now| ids(&sequence(&members, &routing, now, 1))[0];
        assert_eq!(who(at(5, 21)), 1, "Friday evening");
        assert_eq!(who(at(6, 1)), 1, "after midnight into Saturday");
        assert_eq!(who(at(6, 21)), 7, "Saturday evening is not a working span");
        assert_eq!(who(at(5, 12)), 7, "Friday noon is before the span");
    }

    #[test]
    fn local_time_is_the_tenants_weekday_and_minute() {
        let shanghai = crate::time::TimeZone::parse("tz", "Asia/Shanghai").unwrap();
        // 2026-12-06T23:30:00Z is Monday 07:30 in Shanghai
        let ms = crate::time::days_from_civil(2026, 12, 6).unwrap() * 86_400_000
            + (23 * 60 + 30) * 60_000;
        assert_eq!(
            LocalTime::at(shanghai, ms),
            LocalTime {
                weekday: 1,
                minute: 7 * 60 + 30
            }
        );
    }

    #[test]
    fn a_code_without_members_routes_nowhere() {
        let today = HashMap::new();
        assert!(
            route(&RouteInput {
                members: &[],
                routing: &Routing::default(),
                last: None,
                adds_today: &today,
                now: NOON_MONDAY,
            })
            .is_none()
        );
    }
}
