//! Every example in `docs/segments.md` is checked: each `segment` block parses, prints
//! back to the same text, and equals the `json` block after it; and the error quoted in
//! the document is the one siyu gives.

use siyu_audience::Condition;

const DOC: &str = include_str!("../../../docs/segments.md");

/// The fenced blocks of the document: (language, body).
fn blocks() -> Vec<(String, String)> {
    let mut blocks = Vec::new();
    let mut lines = DOC.lines();
    while let Some(line) = lines.next() {
        if let Some(lang) = line.strip_prefix("```")
            && !lang.is_empty()
        {
            let body: Vec<&str> = lines.by_ref().take_while(|l| *l != "```").collect();
            blocks.push((lang.to_owned(), body.join("\n")));
        }
    }
    blocks
}

#[test]
fn every_example_parses_prints_back_and_matches_its_json() {
    let blocks = blocks();
    let mut checked = 0;
    for (i, (lang, body)) in blocks.iter().enumerate() {
        if lang != "segment" {
            continue;
        }
        let parsed = siyu_audience::parse(body).unwrap_or_else(|e| panic!("{body}\n{e}"));
        let printed = parsed.to_string();
        if &printed != body {
            // Chinese class and stage names print as their codes
            let chinese = siyu_audience::condition::RfmClass::ALL
                .iter()
                .map(|c| c.chinese())
                .chain(
                    siyu_audience::condition::LifecycleStage::ALL
                        .iter()
                        .map(|s| s.chinese()),
                );
            let mut expected = body.clone();
            for (zh, code) in chinese.zip(
                siyu_audience::condition::RfmClass::ALL
                    .iter()
                    .map(|c| c.code())
                    .chain(
                        siyu_audience::condition::LifecycleStage::ALL
                            .iter()
                            .map(|s| s.code()),
                    ),
            ) {
                expected = expected.replace(&format!("\"{zh}\""), &format!("\"{code}\""));
            }
            assert_eq!(printed, expected, "prints back the same");
        }
        let (next_lang, json) = blocks.get(i + 1).expect("a json block follows");
        assert_eq!(next_lang, "json", "after {body}");
        let from_json: Condition =
            serde_json::from_str(json).unwrap_or_else(|e| panic!("{json}\n{e}"));
        assert_eq!(from_json, parsed, "{body}");
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} examples");
}

#[test]
fn the_error_the_document_quotes_is_the_one_given() {
    let e = siyu_audience::parse("trait.city = ").unwrap_err();
    let quoted = e.to_string();
    let normalized: String = DOC.split_whitespace().collect::<Vec<_>>().join(" ");
    assert!(normalized.contains(&quoted), "{quoted}");
}
