//! Group commit (`store::GroupCommit`): writes that arrive together share a transaction
//! on SQLite, but each keeps its own outcome. (On PostgreSQL each write has its own
//! transaction; the same properties hold.)

use slotsync::store::{users, StoreError};

use crate::helpers::spawn_app;

#[tokio::test]
async fn a_failed_write_undoes_only_its_own_changes_and_the_others_commit() {
    let app = spawn_app().await;
    let tasks = (0..60).map(|i| {
        let writes = app.state.writes.clone();
        tokio::spawn(async move {
            writes
                .write(move |txn| {
                    Box::pin(async move {
                        let email = format!("g{i}@example.com");
                        let user = users::create(txn, &email, None, format!("hash-{i}")).await?;
                        if i % 5 == 0 {
                            // A second statement fails: the first must be undone with it.
                            users::create(txn, &email, None, format!("again-{i}")).await?;
                        }
                        Ok(user.id)
                    })
                })
                .await
        })
    });
    let answers = futures::future::join_all(tasks).await;
    let all = users::list(&app.state.db, None, 500).await.unwrap();
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("the task ran");
        let stored = all.iter().find(|u| u.email == format!("g{i}@example.com"));
        if i % 5 == 0 {
            assert!(matches!(answer, Err(StoreError::Duplicate(_))), "write {i}: {answer:?}");
            assert!(stored.is_none(), "write {i} failed, yet its first insert stayed");
        } else {
            let id = answer.unwrap_or_else(|e| panic!("write {i} failed: {e}"));
            assert_eq!(
                stored.map(|u| u.id),
                Some(id),
                "write {i} answered Ok but is not stored"
            );
        }
    }
}

#[tokio::test]
async fn a_failed_single_statement_write_leaves_the_rest_of_its_batch_alone() {
    let app = spawn_app().await;
    users::create(&app.state.db, "taken@example.com", None, "hash-taken".into())
        .await
        .unwrap();
    let tasks = (0..40).map(|i| {
        let writes = app.state.writes.clone();
        tokio::spawn(async move {
            let email = if i == 17 {
                "taken@example.com".to_owned()
            } else {
                format!("s{i}@example.com")
            };
            writes
                .write_one(move |txn| Box::pin(async move { users::create(txn, &email, None, format!("h{i}")).await }))
                .await
        })
    });
    let answers = futures::future::join_all(tasks).await;
    let stored = users::list(&app.state.db, None, 500).await.unwrap();
    for (i, answer) in answers.into_iter().enumerate() {
        let answer = answer.expect("the task ran");
        if i == 17 {
            assert!(matches!(answer, Err(StoreError::Duplicate(_))), "{answer:?}");
        } else {
            let user = answer.unwrap_or_else(|e| panic!("write {i} failed: {e}"));
            assert!(stored.iter().any(|u| u.id == user.id), "write {i} is not stored");
        }
    }
    assert_eq!(stored.len(), 40, "39 new users and the one already there");
}
