//! Macros: stored as data, validated on save, shared or personal.

use super::{NOW, agent, tag};
use crate::model::*;
use crate::{Store, StoreError};
use std::sync::Arc;
use tierdesk_core::macros::MacroActions;
use tierdesk_core::{Status, Tier, Timestamp};

pub async fn macros_crud(store: Arc<dyn Store>) {
    let ann = agent(&*store, "ann@desk.test", Tier::ONE).await;
    let bob = agent(&*store, "bob@desk.test", Tier::ONE).await;
    let actions = MacroActions {
        reply: Some("Hi {{requester.first_name}}, your password is reset.".into()),
        status: Some(Status::Solved),
        add_tags: vec![tag("password-reset")],
        ..Default::default()
    };
    let shared = store
        .create_macro(
            NewMacro {
                name: "Password reset done".into(),
                description: "Tier 1 runbook end".into(),
                actions: actions.clone(),
                owner: None,
            },
            NOW,
        )
        .await
        .unwrap();
    assert_eq!(shared.actions, actions, "actions round-trip exactly");
    assert_eq!(shared.uses, 0);
    let mine = store
        .create_macro(
            NewMacro {
                name: "My note".into(),
                description: String::new(),
                actions: MacroActions {
                    note: Some("Called {{requester.name}}".into()),
                    ..Default::default()
                },
                owner: Some(ann),
            },
            NOW,
        )
        .await
        .unwrap();
    let names = |list: Vec<Macro>| list.into_iter().map(|m| m.name).collect::<Vec<_>>();
    assert_eq!(
        names(store.list_macros(ann).await.unwrap()),
        vec!["My note", "Password reset done"]
    );
    assert_eq!(
        names(store.list_macros(bob).await.unwrap()),
        vec!["Password reset done"]
    );

    let duplicate = store
        .create_macro(
            NewMacro {
                name: "password RESET done".into(),
                description: String::new(),
                actions: actions.clone(),
                owner: None,
            },
            NOW,
        )
        .await;
    assert!(
        matches!(duplicate, Err(StoreError::Duplicate { .. })),
        "{duplicate:?}"
    );
    let bad = store
        .create_macro(
            NewMacro {
                name: "Bad".into(),
                description: String::new(),
                actions: MacroActions {
                    reply: Some("Hi {{customer.name}}".into()),
                    ..Default::default()
                },
                owner: Some(ann),
            },
            NOW,
        )
        .await;
    match bad {
        Err(StoreError::Invalid {
            field: "actions",
            message,
        }) => assert!(message.contains("customer.name"), "{message}"),
        other => panic!("expected invalid actions, got {other:?}"),
    }

    store.record_macro_use(shared.id).await.unwrap();
    store.record_macro_use(shared.id).await.unwrap();
    assert_eq!(store.get_macro(shared.id).await.unwrap().unwrap().uses, 2);

    let later = Timestamp(NOW.0 + 5);
    let changed = store
        .update_macro(
            mine.id,
            MacroPatch {
                actions: Some(MacroActions {
                    priority: Some(tierdesk_core::Priority::P2),
                    ..Default::default()
                }),
                ..Default::default()
            },
            later,
        )
        .await
        .unwrap();
    assert_eq!(changed.name, "My note");
    assert_eq!(changed.actions.priority, Some(tierdesk_core::Priority::P2));
    assert_eq!(changed.actions.note, None);
    assert_eq!(changed.updated_at, later);
    assert!(matches!(
        store
            .update_macro(
                mine.id,
                MacroPatch {
                    actions: Some(MacroActions::default()),
                    ..Default::default()
                },
                later
            )
            .await,
        Err(StoreError::Invalid { .. })
    ));
    store.delete_macro(mine.id).await.unwrap();
    assert!(store.get_macro(mine.id).await.unwrap().is_none());
    assert!(matches!(
        store.delete_macro(mine.id).await,
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.record_macro_use(mine.id).await,
        Err(StoreError::NotFound(_))
    ));
}
