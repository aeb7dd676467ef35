//! A mass send's audience from a file: a CSV a brand keeps elsewhere (an event's
//! sign-ups, a store's member list, a partner's winners) whose rows name customers by
//! siyu's customer id or by any identity (phone, email, user id, WeCom's external id, a
//! custom kind such as `member_no`). Headers read as an import reads them (`手机号`,
//! `mobile`, `identity:member_no`); other columns are ignored.
//!
//! The file is read and checked here; the store says which customer each identity or
//! id leads to (a merged id to its survivor) within the caller's reach; [`resolve`]
//! then gives the send its list: each row's first name that leads to a customer, every
//! customer once, in the order of the file, and the rows that named no one with why.
//! A customer out of reach is not found, as everywhere else.

use serde::Serialize;
use utoipa::ToSchema;

use crate::engagement::broadcast::LIST_MAX;
use crate::error::DomainError;
use crate::identity::Identity;
use crate::ids::CustomerId;
use crate::import::{Column, ImportKind, RejectedRow, check_file, field_meaning, reason};

/// The largest file taken, in bytes.
pub const FILE_MAX_BYTES: usize = 10 << 20;
/// How many of the rows that named no one an answer lists (all are counted).
pub const UNMATCHED_SHOWN: usize = 100;

/// How a row names its customer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowName {
    Customer(CustomerId),
    Identity(Identity),
}

/// A row that names someone: its line in the file (the header is line 1) and its
/// names, in the order of the columns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudienceRow {
    pub line: u64,
    pub names: Vec<RowName>,
}

/// A file read: the rows that name someone, and the ones refused (a malformed phone,
/// a row with no name at all) with why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AudienceFile {
    pub rows: Vec<AudienceRow>,
    pub refused: Vec<RejectedRow>,
}

#[derive(Debug, Clone, PartialEq)]
enum Meaning {
    Customer,
    Identity(crate::identity::IdentityKind),
    Ignored,
}

fn meaning(header: &str) -> Result<Meaning, DomainError> {
    let key = header.trim().trim_start_matches('\u{feff}').to_lowercase();
    let id_key = key.replace([' ', '-'], "_");
    if matches!(
        id_key.as_str(),
        "customer_id" | "customerid" | "客户id" | "客户编号"
    ) {
        return Ok(Meaning::Customer);
    }
    if key.is_empty() {
        return Ok(Meaning::Ignored);
    }
    Ok(match field_meaning(ImportKind::Customers, &key, header)? {
        Column::Identity(kind) => Meaning::Identity(kind),
        _ => Meaning::Ignored,
    })
}

/// Reads a file: UTF-8 CSV (a byte-order mark is fine) whose first row names the
/// columns. Refused as a whole when it is not such a file, names no column siyu can
/// find a customer by, holds no row, or holds more rows than a list may name.
pub fn read(bytes: &[u8]) -> Result<AudienceFile, DomainError> {
    if bytes.len() > FILE_MAX_BYTES {
        return Err(DomainError::invalid(
            "file",
            format!(
                "is larger than {} MiB; a segment reaches more customers",
                FILE_MAX_BYTES >> 20
            ),
        ));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Err(DomainError::invalid(
            "file",
            "is empty: its first row names the columns, the rows after it the customers",
        ));
    }
    let rows = check_file(bytes)?;
    let mut csv = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(bytes);
    let headers = csv
        .headers()
        .map_err(|e| DomainError::invalid("file", format!("cannot read the header: {e}")))?
        .clone();
    let columns = headers
        .iter()
        .map(meaning)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| DomainError::invalid("file", format!("header: {}", reason(e))))?;
    if !columns.iter().any(|c| *c != Meaning::Ignored) {
        return Err(DomainError::invalid(
            "file",
            "no column names a customer: the first row names the columns, one of customer_id, \
             phone (手机号), email, user_id, wecom_external_userid, wechat_unionid, \
             wechat_openid, or identity:KIND for another kind",
        ));
    }
    let data_rows = rows as usize;
    if data_rows > LIST_MAX {
        return Err(DomainError::invalid(
            "file",
            format!("holds {data_rows} rows; a list may name at most {LIST_MAX} customers"),
        ));
    }
    let mut file = AudienceFile::default();
    for record in csv.records() {
        let record = record
            .map_err(|e| DomainError::invalid("file", format!("cannot be read as CSV: {e}")))?;
        let line = record.position().map_or(0, |p| p.line());
        if record.iter().all(str::is_empty) {
            continue;
        }
        match names(&columns, &record) {
            Ok(names) if names.is_empty() => file.refused.push(RejectedRow {
                line,
                reason: "names no customer: every column that could is empty".into(),
            }),
            Ok(names) => file.rows.push(AudienceRow { line, names }),
            Err(reason) => file.refused.push(RejectedRow { line, reason }),
        }
    }
    if file.rows.is_empty() && file.refused.is_empty() {
        return Err(DomainError::invalid(
            "file",
            "holds no row: a send needs an audience",
        ));
    }
    Ok(file)
}

fn names(columns: &[Meaning], record: &csv::StringRecord) -> Result<Vec<RowName>, String> {
    let mut names = Vec::new();
    for (column, cell) in columns.iter().zip(record.iter()) {
        if cell.is_empty() {
            continue;
        }
        match column {
            Meaning::Customer => match cell.parse::<i64>() {
                Ok(id) if id > 0 => names.push(RowName::Customer(CustomerId(id))),
                _ => return Err(format!("customer_id: {cell:?} is not a customer id")),
            },
            Meaning::Identity(kind) => {
                let identity = Identity::new(kind.clone(), cell)
                    .map_err(|e| format!("{}: {}", kind.as_str(), reason(e)))?;
                names.push(RowName::Identity(identity));
            }
            Meaning::Ignored => {}
        }
    }
    Ok(names)
}

/// What a file gives a send: its customers, and what became of every row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct AudienceFromFile {
    /// Every customer the file names, once, in the order of the file: the list a send
    /// takes as its audience (`{"customers": […]}`).
    pub customers: Vec<CustomerId>,
    /// Data rows read (blank rows not counted).
    pub rows: u64,
    /// Rows that led to a customer.
    pub matched_rows: u64,
    /// Of those, rows whose customer an earlier row named already (two rows of one
    /// person, by the same or another identity, or by two ids of one merged person).
    pub repeated_rows: u64,
    /// Rows that led to no customer, or were refused.
    pub unmatched_rows: u64,
    /// The first of those (at most 100), with why.
    pub unmatched: Vec<RejectedRow>,
}

/// Gives each row its customer: the first of its names that `lead` takes to a customer
/// (the store's answer: the survivor, within reach).
pub fn resolve(
    file: &AudienceFile,
    lead: impl Fn(&RowName) -> Option<CustomerId>,
) -> AudienceFromFile {
    let mut seen = std::collections::HashSet::new();
    let mut out = AudienceFromFile {
        customers: Vec::new(),
        rows: (file.rows.len() + file.refused.len()) as u64,
        matched_rows: 0,
        repeated_rows: 0,
        unmatched_rows: file.refused.len() as u64,
        unmatched: Vec::new(),
    };
    let mut unmatched: Vec<RejectedRow> = file.refused.clone();
    for row in &file.rows {
        match row.names.iter().find_map(&lead) {
            Some(customer) => {
                out.matched_rows += 1;
                if seen.insert(customer) {
                    out.customers.push(customer);
                } else {
                    out.repeated_rows += 1;
                }
            }
            None => {
                out.unmatched_rows += 1;
                unmatched.push(RejectedRow {
                    line: row.line,
                    reason: "no customer found by this row's identities".into(),
                });
            }
        }
    }
    unmatched.sort_by_key(|r| r.line);
    unmatched.truncate(UNMATCHED_SHOWN);
    out.unmatched = unmatched;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phone(v: &str) -> RowName {
        RowName::Identity(Identity::of("phone", v).unwrap())
    }

    #[test]
    fn reads_identities_and_ids_by_their_headers_and_ignores_the_rest() {
        let file = read(
            "\u{feff}姓名,手机号,customer_id,identity:member_no\n\
             李娜,138 1234 1680,,M-01\n\
             王芳,,42,\n\
             ,,,\n\
             赵雷,12,,\n\
             钱多,,,\n"
                .as_bytes(),
        )
        .unwrap();
        assert_eq!(file.rows.len(), 2);
        assert_eq!(file.rows[0].line, 2);
        assert_eq!(
            file.rows[0].names,
            vec![
                phone("13812341680"),
                RowName::Identity(Identity::of("member_no", "M-01").unwrap())
            ]
        );
        assert_eq!(file.rows[1].names, vec![RowName::Customer(CustomerId(42))]);
        // the blank row is skipped; a bad phone and a row naming no one are refused
        assert_eq!(file.refused.len(), 2);
        assert_eq!(file.refused[0].line, 5);
        assert!(
            file.refused[0].reason.starts_with("phone:"),
            "{:?}",
            file.refused
        );
        assert_eq!(file.refused[1].line, 6);
    }

    #[test]
    fn refuses_files_that_cannot_make_a_list() {
        let field_of = |bytes: &[u8]| match read(bytes) {
            Err(DomainError::Invalid(f)) => (f.field, f.message),
            other => panic!("{other:?}"),
        };
        let (field, message) = field_of(b"name,city\nLi,Shanghai\n");
        assert_eq!(field, "file");
        assert!(message.contains("no column names a customer"), "{message}");
        assert!(field_of(b"phone\n").1.contains("holds no row"));
        assert!(field_of(b"phone\n\"138").1.contains("never closed"));
        assert!(
            field_of(&[b'p', b'h', b'o', b'n', b'e', b'\n', 0xff, 0xfe])
                .1
                .contains("UTF-8")
        );
        let mut big = String::from("customer_id\n");
        for i in 0..=LIST_MAX {
            big.push_str(&format!("{}\n", i + 1));
        }
        assert!(field_of(big.as_bytes()).1.contains("at most"));
        assert!(
            field_of(&vec![b'a'; FILE_MAX_BYTES + 1])
                .1
                .contains("larger")
        );
    }

    #[test]
    fn resolves_each_row_once_in_file_order_and_says_why_rows_named_no_one() {
        let file = read(
            "Customer ID,phone\n7,\n,13812341680\n9,13812341680\n,13912345678\n5,\nx,\n".as_bytes(),
        )
        .unwrap();
        let out = resolve(&file, |name| match name {
            RowName::Customer(CustomerId(7)) => Some(CustomerId(7)),
            // 9 was merged into 7
            RowName::Customer(CustomerId(9)) => Some(CustomerId(7)),
            RowName::Identity(i) if i.value == "+8613812341680" => Some(CustomerId(3)),
            _ => None,
        });
        assert_eq!(out.customers, vec![CustomerId(7), CustomerId(3)]);
        assert_eq!(out.rows, 6);
        assert_eq!(out.matched_rows, 3);
        assert_eq!(out.repeated_rows, 1);
        assert_eq!(out.unmatched_rows, 3);
        let lines: Vec<u64> = out.unmatched.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![5, 6, 7]);
        assert!(out.unmatched[2].reason.contains("not a customer id"));

        // the first 100 lines that named no one, whichever way
        let mut many = String::from("phone\n13912345678\n");
        many.push_str(&"12\n".repeat(150));
        let out = resolve(&read(many.as_bytes()).unwrap(), |_| None);
        assert_eq!(out.unmatched_rows, 151);
        assert_eq!(out.unmatched.len(), UNMATCHED_SHOWN);
        assert_eq!(out.unmatched[0].line, 2);
        assert_eq!(out.unmatched[99].line, 101);
    }
}
