//! Group commit for SQLite: writes that arrive together share one transaction.
//!
//! SQLite has a single writer, and each committed transaction costs one `fsync` of the
//! write-ahead log. When every request commits alone, concurrent writers queue for the
//! write lock (sleeping in SQLite's busy handler) and the disk's sync rate caps the
//! service. Here each write runs in a savepoint of a shared transaction instead: the
//! first writer to find no commit under way becomes the leader, takes every write queued
//! so far (its own included), runs each in its own savepoint and commits them all at once.
//! A write that fails rolls back its savepoint only.
//!
//! **Durability is unchanged:** a caller gets its answer only after the transaction that
//! holds its write has committed. If that commit fails, every write in it reports the
//! failure and none of them happened.
//!
//! PostgreSQL runs many writers at once and groups concurrent commits itself, so there
//! each write runs on its own: in a transaction of its own, or, for a single statement,
//! without one. (Grouping there too was tried: one writer at a time made it slower.)

use std::sync::Arc;

use futures::future::BoxFuture;
use parking_lot::Mutex;
use sea_orm::{DatabaseConnection, DatabaseExecutor, DbBackend, DbErr, TransactionTrait};
use tokio::sync::oneshot;

use super::StoreError;

/// Most writes one transaction takes (the rest wait for the next one).
const MAX_BATCH: usize = 256;

/// One write: runs against the (shared) transaction; `true` if it succeeded and its
/// savepoint should be kept.
type Work = Box<dyn for<'t> FnOnce(&'t DatabaseExecutor<'t>) -> BoxFuture<'t, bool> + Send>;

/// A queued write and where to tell its caller how the commit went.
struct Queued {
    work: Work,
    /// Whether the write runs in a savepoint of its own (see [`GroupCommit::write_one`]).
    isolated: bool,
    committed: oneshot::Sender<Result<(), String>>,
}

/// Batches concurrent write transactions on SQLite (see the module docs).
pub struct GroupCommit {
    db: DatabaseConnection,
    queue: Mutex<Vec<Queued>>,
    /// Held by the leader while it commits a batch.
    turn: tokio::sync::Mutex<()>,
}

impl GroupCommit {
    /// Group commit over `db` (a pass-through on PostgreSQL).
    pub fn new(db: DatabaseConnection) -> Self {
        Self {
            db,
            queue: Mutex::new(Vec::new()),
            turn: tokio::sync::Mutex::new(()),
        }
    }

    /// The pool writes go to (reads may use it directly).
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// Runs `write` in a transaction and commits it; answers what `write` answered, once
    /// its changes are committed. An `Err` from `write` rolls back its changes alone.
    pub async fn write<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseExecutor<'t>) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(write, true).await
    }

    /// As [`GroupCommit::write`], for a write of **one statement** (reads may follow it):
    /// it needs no savepoint, since SQLite undoes a failed statement alone and the
    /// transaction goes on; on PostgreSQL it runs on its own, without a transaction.
    pub async fn write_one<T, F>(&self, write: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseExecutor<'t>) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        self.submit(write, false).await
    }

    async fn submit<T, F>(&self, write: F, isolated: bool) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: for<'t> FnOnce(&'t DatabaseExecutor<'t>) -> BoxFuture<'t, Result<T, StoreError>> + Send + 'static,
    {
        if self.db.get_database_backend() != DbBackend::Sqlite {
            if !isolated {
                return write(&DatabaseExecutor::Connection(&self.db)).await;
            }
            let txn = super::begin_write(&self.db).await?;
            let value = write(&DatabaseExecutor::Transaction(&txn)).await?;
            txn.commit().await?;
            return Ok(value);
        }
        let outcome: Arc<Mutex<Option<Result<T, StoreError>>>> = Arc::new(Mutex::new(None));
        let slot = Arc::clone(&outcome);
        let work: Work = Box::new(move |txn| {
            Box::pin(async move {
                let result = write(txn).await;
                let ok = result.is_ok();
                *slot.lock() = Some(result);
                ok
            })
        });
        let (committed, mut answer) = oneshot::channel();
        self.queue.lock().push(Queued {
            work,
            isolated,
            committed,
        });
        let commit = loop {
            let turn = self.turn.lock().await;
            match answer.try_recv() {
                Ok(commit) => break commit,
                Err(oneshot::error::TryRecvError::Closed) => {
                    break Err("the transaction holding this write was abandoned".to_owned())
                }
                Err(oneshot::error::TryRecvError::Empty) => {}
            }
            let batch: Vec<Queued> = {
                let mut queue = self.queue.lock();
                let take = queue.len().min(MAX_BATCH);
                queue.drain(..take).collect()
            };
            self.commit_batch(batch).await;
            drop(turn);
        };
        commit.map_err(|e| StoreError::Db(DbErr::Custom(e)))?;
        let result = outcome.lock().take();
        result.unwrap_or_else(|| Err(StoreError::Db(DbErr::Custom("a batched write did not run".to_owned()))))
    }

    /// Runs each write in its own savepoint of one transaction, commits, and tells every
    /// caller how the commit went.
    async fn commit_batch(&self, batch: Vec<Queued>) {
        let (works, waiting): (Vec<_>, Vec<_>) = batch.into_iter().map(|q| ((q.work, q.isolated), q.committed)).unzip();
        let result: Result<(), DbErr> = async {
            let txn = super::begin_write(&self.db).await?;
            for (work, isolated) in works {
                if !isolated {
                    work(&DatabaseExecutor::Transaction(&txn)).await;
                    continue;
                }
                let savepoint = txn.begin().await?;
                if work(&DatabaseExecutor::Transaction(&savepoint)).await {
                    savepoint.commit().await?;
                } else {
                    savepoint.rollback().await?;
                }
            }
            txn.commit().await
        }
        .await;
        let result = result.map_err(|e| e.to_string());
        for committed in waiting {
            let _ = committed.send(result.clone());
        }
    }
}
