//! A generated corp for the benchmark (`siyu bench wecom-sync`: 100,000 customers across
//! 50 members) and for `siyu demo`. Deterministic from its seed, so two runs sync the
//! same data and a figure can be compared with the last one; it does not read the clock
//! (create times count back from a fixed date).

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::corp::{ChatMember, Corp, ExternalContact, FollowInfo, GroupChat, Member};

/// What to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerateSpec {
    pub members: usize,
    pub contacts: usize,
    pub tag_groups: usize,
    pub tags_per_group: usize,
    /// Share of relations carrying corp tags (0.0–1.0).
    pub tagged_share: f64,
    pub seed: u64,
}

impl Default for GenerateSpec {
    /// The benchmark's corp.
    fn default() -> Self {
        Self {
            members: 50,
            contacts: 100_000,
            tag_groups: 8,
            tags_per_group: 6,
            tagged_share: 0.8,
            seed: 19,
        }
    }
}

/// The corp id, secret a generated corp accepts.
pub const GENERATED_CORP_ID: &str = "wwstandin0000000001";
pub const GENERATED_SECRET: &str = "standin-secret-0000000000000000000000000001";

/// 2024-06-01 00:00 UTC+8: relations are created in the year before it.
const BASE_TIME: u64 = 1_717_171_200;

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
    "何", "林", "罗", "高",
];
const GIVEN: &[&str] = &[
    "伟", "芳", "娜", "敏", "静", "丽", "强", "磊", "洋", "艳", "勇", "军", "杰", "娟", "涛", "明",
    "超", "秀", "霞", "平", "刚", "桂", "英", "华", "玉", "兰", "晨", "宇", "欣", "怡",
];
const GROUPS: &[(&str, &[&str])] = &[
    (
        "客户等级",
        &["VIP", "高价值", "普通", "潜在", "流失预警", "沉睡"],
    ),
    (
        "购买意向",
        &["高意向", "中意向", "低意向", "已成交", "复购", "观望"],
    ),
    (
        "来源渠道",
        &["门店", "直播间", "小程序", "公众号", "朋友推荐", "广告投放"],
    ),
    (
        "兴趣偏好",
        &["护肤", "彩妆", "香氛", "母婴", "运动", "数码"],
    ),
    (
        "生命周期",
        &["新客", "成长期", "成熟期", "衰退期", "召回", "忠诚"],
    ),
    (
        "门店区域",
        &["华东", "华南", "华北", "华中", "西南", "西北"],
    ),
    (
        "会员等级",
        &["银卡", "金卡", "白金卡", "黑卡", "非会员", "员工"],
    ),
    (
        "活动参与",
        &["618", "双11", "年货节", "会员日", "新品试用", "直播抽奖"],
    ),
];
const DEPARTMENTS: &[&str] = &["销售一部", "销售二部", "门店运营部", "会员中心", "客服部"];

fn pick<'a>(rng: &mut StdRng, from: &[&'a str]) -> &'a str {
    from[rng.gen_range(0..from.len())]
}

fn chars(rng: &mut StdRng, n: usize, alphabet: &[u8]) -> String {
    (0..n)
        .map(|_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
        .collect()
}

const ID_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn person_name(rng: &mut StdRng) -> String {
    let mut name = pick(rng, SURNAMES).to_owned();
    for _ in 0..rng.gen_range(1..=2) {
        name.push_str(pick(rng, GIVEN));
    }
    name
}

impl Corp {
    /// A corp per `spec` (corp id [`GENERATED_CORP_ID`], secret [`GENERATED_SECRET`]):
    /// a root and five departments, members `member001…` with customer contact,
    /// customers `wm…` each followed by one member (one in ten by two), unionids on most,
    /// corp tags on `tagged_share` of the relations, and a few group chats.
    pub fn generate(spec: &GenerateSpec) -> Corp {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let mut corp = Corp::new(GENERATED_CORP_ID)
            .add_secret(GENERATED_SECRET)
            .add_department(1, "思域演示品牌", 0);
        for (i, name) in DEPARTMENTS.iter().enumerate() {
            corp = corp.add_department(i as u64 + 2, name, 1);
        }
        let members: Vec<String> = (1..=spec.members)
            .map(|i| format!("member{i:03}"))
            .collect();
        for (i, userid) in members.iter().enumerate() {
            let dept = (i % DEPARTMENTS.len()) as u64 + 2;
            let name = person_name(&mut rng);
            corp.insert_member(Member::new(userid, &name, dept));
        }
        let mut tag_ids: Vec<Vec<String>> = Vec::new();
        for g in 0..spec.tag_groups {
            let (group_name, names) = GROUPS[g % GROUPS.len()];
            let group_name = if g < GROUPS.len() {
                group_name.to_owned()
            } else {
                format!("{group_name}{}", g / GROUPS.len() + 1)
            };
            let gid = corp.create_group(&group_name, g as u64, BASE_TIME - 400 * 86_400);
            let ids = (0..spec.tags_per_group)
                .map(|t| {
                    let name = match names.get(t) {
                        Some(n) => (*n).to_owned(),
                        None => format!("标签{}", t + 1),
                    };
                    corp.create_tag(&gid, &name, t as u64, BASE_TIME - 400 * 86_400)
                })
                .collect();
            tag_ids.push(ids);
        }
        corp.contacts.reserve(spec.contacts);
        corp.followers.reserve(spec.contacts);
        for _ in 0..spec.contacts {
            let mut id = format!("wm{}", chars(&mut rng, 30, ID_CHARS));
            while corp.contacts.contains_key(&id) {
                id = format!("wm{}", chars(&mut rng, 30, ID_CHARS));
            }
            let wecom_user = rng.gen_bool(0.08);
            let contact = ExternalContact {
                external_userid: id.clone(),
                name: person_name(&mut rng),
                type_: if wecom_user { 2 } else { 1 },
                gender: rng.gen_range(0..=2),
                unionid: rng
                    .gen_bool(0.85)
                    .then(|| format!("o{}", chars(&mut rng, 27, ID_CHARS))),
                corp_name: if wecom_user {
                    "思域合作伙伴".to_owned()
                } else {
                    String::new()
                },
                corp_full_name: if wecom_user {
                    "思域合作伙伴有限公司".to_owned()
                } else {
                    String::new()
                },
                position: String::new(),
                avatar: format!(
                    "http://wx.qlogo.cn/mmhead/{}/0",
                    chars(&mut rng, 20, ID_CHARS)
                ),
            };
            corp.insert_contact(contact);
            let first = rng.gen_range(0..members.len().max(1));
            let mut followers = vec![first];
            if members.len() > 1 && rng.gen_bool(0.1) {
                let second = (first + rng.gen_range(1..members.len())) % members.len();
                followers.push(second);
            }
            for m in followers {
                let Some(userid) = members.get(m) else {
                    continue;
                };
                let tagged = !tag_ids.is_empty() && rng.gen_bool(spec.tagged_share.clamp(0.0, 1.0));
                let mut tags = Vec::new();
                if tagged {
                    for _ in 0..rng.gen_range(1..=3) {
                        let group = &tag_ids[rng.gen_range(0..tag_ids.len())];
                        if let Some(tag) = group.get(rng.gen_range(0..group.len().max(1)))
                            && !tags.contains(tag)
                        {
                            tags.push(tag.clone());
                        }
                    }
                }
                let with_state = rng.gen_bool(0.3);
                let info = FollowInfo {
                    remark: if rng.gen_bool(0.2) {
                        person_name(&mut rng)
                    } else {
                        String::new()
                    },
                    description: String::new(),
                    createtime: BASE_TIME - rng.gen_range(0..365 * 86_400),
                    tag_ids: tags,
                    personal_tags: if rng.gen_bool(0.05) {
                        vec!["老朋友".to_owned()]
                    } else {
                        Vec::new()
                    },
                    add_way: if with_state {
                        1
                    } else {
                        *[0u32, 2, 3, 4, 201].get(rng.gen_range(0..5)).unwrap_or(&0)
                    },
                    state: if with_state {
                        format!("channel_{:02}", rng.gen_range(1..=20))
                    } else {
                        String::new()
                    },
                    oper_userid: id.clone(),
                    remark_corp_name: String::new(),
                    remark_mobiles: Vec::new(),
                };
                corp.insert_follow(userid, &id, info);
            }
        }
        generate_chats(&mut corp, &mut rng, &members);
        corp
    }
}

/// One group chat per five members, with the owner and up to 20 of their customers.
fn generate_chats(corp: &mut Corp, rng: &mut StdRng, members: &[String]) {
    for (n, owner) in members.iter().step_by(5).enumerate() {
        let created = BASE_TIME - rng.gen_range(0..300 * 86_400);
        let mut member_list = vec![ChatMember {
            userid: owner.clone(),
            type_: 1,
            join_time: created,
            join_scene: 1,
            ..ChatMember::default()
        }];
        for ext in corp.customers_of(owner).into_iter().take(20) {
            let unionid = corp.contacts.get(&ext).and_then(|c| c.unionid.clone());
            member_list.push(ChatMember {
                userid: ext,
                type_: 2,
                unionid,
                join_time: created + rng.gen_range(0..86_400),
                join_scene: rng.gen_range(1..=3),
                invitor: Some(owner.clone()),
                ..ChatMember::default()
            });
        }
        let chat_id = format!("wr{}", chars(rng, 30, ID_CHARS));
        corp.chats.insert(
            chat_id.clone(),
            GroupChat {
                chat_id,
                name: format!("思域会员{}群", n + 1),
                owner: owner.clone(),
                create_time: created,
                member_list,
                member_version: chars(rng, 32, b"0123456789abcdef"),
                ..GroupChat::default()
            },
        );
    }
}
