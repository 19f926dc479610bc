//! Integration tests of the knowledge-base index and answer bot on fixture articles.

use std::path::Path;

use tierdesk_kb::{
    AnswerOptions, ArticleSource, ArticleStatus, Audience, IndexChange, IndexedArticle, KbError,
    KbIndex, SearchRequest, parse_article_file,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn fixtures() -> Result<Vec<ArticleSource>, Box<dyn std::error::Error>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut paths: Vec<_> = std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .collect();
    paths.sort();
    let mut out = Vec::new();
    for path in paths {
        let slug = path
            .file_stem()
            .and_then(|s| s.to_str())
            .ok_or("bad file name")?
            .to_owned();
        out.push(parse_article_file(&slug, &std::fs::read_to_string(&path)?)?);
    }
    Ok(out)
}

fn indexed(articles: &[ArticleSource]) -> Vec<IndexedArticle> {
    articles
        .iter()
        .enumerate()
        .map(|(i, a)| IndexedArticle {
            id: i as i64 + 1,
            slug: a.slug.clone(),
            title: a.title.clone(),
            category: a.category.clone(),
            tags: a.tags.clone(),
            body: a.body.clone(),
            visibility: a.visibility,
            published: a.status == ArticleStatus::Published,
        })
        .collect()
}

fn fixture_index() -> Result<(KbIndex, Vec<IndexedArticle>), Box<dyn std::error::Error>> {
    let index = KbIndex::in_memory()?;
    let articles = indexed(&fixtures()?);
    let count = index.rebuild(articles.clone(), 10)?;
    assert_eq!(count, 4, "the draft is not indexed");
    Ok((index, articles))
}

fn search(index: &KbIndex, text: &str, audience: Audience) -> Result<Vec<String>, KbError> {
    Ok(index
        .search(&SearchRequest {
            text: text.into(),
            audience,
            category: None,
            limit: 10,
        })?
        .into_iter()
        .map(|h| h.slug)
        .collect())
}

#[test]
fn search_ranks_the_matching_article_first_with_marked_snippet() -> TestResult {
    let (index, _) = fixture_index()?;
    assert_eq!(index.len(), 4);
    assert_eq!(index.applied_cursor(), 10);
    let hits = index.search(&SearchRequest {
        text: "reset vpn password".into(),
        audience: Audience::Public,
        category: None,
        limit: 5,
    })?;
    assert_eq!(
        hits.first().map(|h| h.slug.as_str()),
        Some("reset-vpn-password")
    );
    let top = &hits[0];
    assert_eq!(top.category.as_deref(), Some("VPN and remote access"));
    assert!(top.snippet_html.contains("<mark>"), "{}", top.snippet_html);
    assert!(!top.snippet_html.contains("<script"));
    assert!(hits.windows(2).all(|w| w[0].score >= w[1].score));
    Ok(())
}

#[test]
fn category_filter_restricts_results() -> TestResult {
    let (index, _) = fixture_index()?;
    let hits = index.search(&SearchRequest {
        text: "password".into(),
        audience: Audience::Public,
        category: Some("Email and Outlook".into()),
        limit: 10,
    })?;
    let slugs: Vec<&str> = hits.iter().map(|h| h.slug.as_str()).collect();
    assert_eq!(slugs, ["outlook-password-prompt-loop"]);
    Ok(())
}

#[test]
fn typo_query_finds_the_article() -> TestResult {
    let (index, _) = fixture_index()?;
    let typo = search(&index, "pasword", Audience::Public)?;
    assert!(typo.contains(&"reset-vpn-password".to_owned()), "{typo:?}");
    assert!(
        typo.contains(&"outlook-password-prompt-loop".to_owned()),
        "{typo:?}"
    );
    let printer = search(&index, "priner queue stuk", Audience::Public)?;
    assert_eq!(
        printer.first().map(String::as_str),
        Some("print-queue-stuck")
    );
    Ok(())
}

#[test]
fn hostile_query_syntax_does_not_error() -> TestResult {
    let (index, _) = fixture_index()?;
    for text in [
        "\"",
        ":",
        "AND(",
        "",
        "   ",
        "title:vpn",
        "vpn\" OR (password",
        "*",
        "~2 ^3 -x +y",
        "[a TO b]",
    ] {
        search(&index, text, Audience::Public)?;
        index.answer(text, Audience::Public, &AnswerOptions::default())?;
    }
    assert!(search(&index, "", Audience::Agent)?.is_empty());
    assert_eq!(
        search(&index, "vpn\" AND( password:", Audience::Public)?
            .first()
            .map(String::as_str),
        Some("reset-vpn-password")
    );
    Ok(())
}

#[test]
fn public_never_sees_internal_articles() -> TestResult {
    let (index, _) = fixture_index()?;
    let public = search(&index, "unlock active directory account", Audience::Public)?;
    assert!(
        !public.contains(&"unlock-ad-account".to_owned()),
        "{public:?}"
    );
    let agent = search(&index, "unlock active directory account", Audience::Agent)?;
    assert_eq!(agent.first().map(String::as_str), Some("unlock-ad-account"));
    let answer = index.answer(
        "Unlock-ADAccount lockout",
        Audience::Public,
        &AnswerOptions::default(),
    )?;
    assert!(
        answer
            .passages
            .iter()
            .all(|p| p.slug != "unlock-ad-account")
    );
    let agent_answer = index.answer(
        "Unlock-ADAccount lockout",
        Audience::Agent,
        &AnswerOptions::default(),
    )?;
    assert_eq!(
        agent_answer.passages.first().map(|p| p.slug.as_str()),
        Some("unlock-ad-account")
    );
    Ok(())
}

#[test]
fn apply_upserts_removes_and_drops_drafts() -> TestResult {
    let (index, articles) = fixture_index()?;
    let find = |index: &KbIndex, q: &str| search(index, q, Audience::Agent);
    // An edit is visible as soon as apply returns.
    let mut vpn = articles
        .iter()
        .find(|a| a.slug == "reset-vpn-password")
        .cloned()
        .ok_or("fixture missing")?;
    vpn.title = "Reset your WireGuard tunnel secret".into();
    index.apply(vec![IndexChange::Upsert(vpn.clone())], 11)?;
    assert_eq!(index.applied_cursor(), 11);
    assert_eq!(find(&index, "wireguard tunnel")?, ["reset-vpn-password"]);
    assert_eq!(index.len(), 4, "an upsert replaces, not duplicates");
    // Unpublishing removes it.
    vpn.published = false;
    index.apply(vec![IndexChange::Upsert(vpn.clone())], 12)?;
    assert!(find(&index, "wireguard tunnel")?.is_empty());
    assert!(
        index
            .answer(
                "wireguard tunnel",
                Audience::Agent,
                &AnswerOptions::default()
            )?
            .passages
            .is_empty()
    );
    assert_eq!(index.len(), 3);
    // Publishing the draft adds it; removing deletes article and passages.
    let mut draft = articles
        .iter()
        .find(|a| a.slug == "new-laptop-draft")
        .cloned()
        .ok_or("fixture missing")?;
    assert!(find(&index, "replacement laptop")?.is_empty());
    draft.published = true;
    index.apply(vec![IndexChange::Upsert(draft.clone())], 13)?;
    assert_eq!(find(&index, "replacement laptop")?, ["new-laptop-draft"]);
    index.apply(vec![IndexChange::Remove(draft.id)], 14)?;
    assert!(find(&index, "replacement laptop")?.is_empty());
    assert!(
        index
            .answer(
                "replacement laptop",
                Audience::Agent,
                &AnswerOptions::default()
            )?
            .passages
            .is_empty()
    );
    assert_eq!(index.applied_cursor(), 14);
    // Several changes in one batch.
    index.apply(
        vec![
            IndexChange::Upsert(draft.clone()),
            IndexChange::Remove(1),
            IndexChange::Remove(999),
        ],
        15,
    )?;
    assert_eq!(index.len(), 3);
    Ok(())
}

#[test]
fn cursor_and_documents_persist_across_reopen() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("kb-index");
    let articles = indexed(&fixtures()?);
    {
        let index = KbIndex::open_in_dir(&path)?;
        assert_eq!(index.applied_cursor(), 0);
        assert_eq!(index.len(), 0);
        index.rebuild(articles.clone(), 41)?;
        // articles[0] is the draft (never indexed); remove a visible one.
        index.apply(vec![IndexChange::Remove(articles[1].id)], 42)?;
    }
    let reopened = KbIndex::open_in_dir(&path)?;
    assert_eq!(reopened.applied_cursor(), 42);
    assert_eq!(reopened.len(), 3);
    assert_eq!(
        search(&reopened, "print queue", Audience::Public)?
            .first()
            .map(String::as_str),
        Some("print-queue-stuck")
    );
    Ok(())
}

#[test]
fn answers_quote_the_right_passage_with_bounded_confidence() -> TestResult {
    let (index, _) = fixture_index()?;
    let opts = AnswerOptions::default();
    let answer = index.answer("how do I reset my VPN password?", Audience::Public, &opts)?;
    let best = answer.passages.first().ok_or("no passage")?;
    assert_eq!(best.slug, "reset-vpn-password");
    assert_eq!(best.anchor.as_deref(), Some("reset-the-vpn-password"));
    assert!(best.text.contains("self-service portal"), "{}", best.text);
    assert!(answer.passages.len() <= opts.max_passages);
    assert!((0.0..=1.0).contains(&answer.confidence));
    assert!(answer.confident, "confidence {}", answer.confidence);
    assert!(!answer.wants_person);

    let off_topic = index.answer(
        "what is the weather in Lisbon tomorrow",
        Audience::Public,
        &opts,
    )?;
    assert!(!off_topic.confident);
    assert!(off_topic.confidence < answer.confidence);
    let near_topic = index.answer(
        "how do I reset my Salesforce password",
        Audience::Public,
        &opts,
    )?;
    assert!((0.0..=1.0).contains(&near_topic.confidence));
    assert!(
        !near_topic.confident,
        "confidence {}",
        near_topic.confidence
    );

    let person = index.answer(
        "reset vpn password, or let me talk to a human",
        Audience::Public,
        &opts,
    )?;
    assert!(person.wants_person);
    assert!(!person.confident, "asking for a person always hands over");
    assert!(
        !person.passages.is_empty(),
        "the passages still go to the agent"
    );
    Ok(())
}

#[test]
fn index_is_shared_across_threads() -> TestResult {
    let (index, articles) = fixture_index()?;
    let index = std::sync::Arc::new(index);
    let readers: Vec<_> = (0..4)
        .map(|_| {
            let index = index.clone();
            std::thread::spawn(move || -> Result<usize, KbError> {
                let mut found = 0;
                for _ in 0..20 {
                    found += search(&index, "print queue", Audience::Public)?.len();
                }
                Ok(found)
            })
        })
        .collect();
    for i in 0..10 {
        index.apply(vec![IndexChange::Upsert(articles[0].clone())], 100 + i)?;
    }
    for reader in readers {
        let found = reader.join().map_err(|_| "reader panicked")??;
        assert!(found >= 20);
    }
    assert_eq!(index.applied_cursor(), 109);
    Ok(())
}
