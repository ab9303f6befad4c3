//! Group commit for new messages: concurrent sends are written together, one transaction and
//! one commit per batch, and each request is answered only once its row is committed.

use sea_orm::{DatabaseConnection, DbErr, TransactionTrait};
use tokio::sync::{mpsc, oneshot};

use crate::repo;

/// Most rows written in one statement.
const MAX_BATCH: usize = 256;

type Job = (entity::message::Model, oneshot::Sender<Result<(), DbErr>>);

/// Hands new message rows to the writer task. Cheap to clone.
#[derive(Clone)]
pub struct MessageWriter(mpsc::Sender<Job>);

impl MessageWriter {
    /// Starts the writer task on `db` (it ends when every handle is dropped).
    pub fn spawn(db: DatabaseConnection) -> Self {
        let (tx, rx) = mpsc::channel(4 * MAX_BATCH);
        tokio::spawn(run(db, rx));
        Self(tx)
    }

    /// Inserts `row`, committed when this returns `Ok`.
    pub async fn insert(&self, row: entity::message::Model) -> Result<(), DbErr> {
        let (done, wait) = oneshot::channel();
        self.0
            .send((row, done))
            .await
            .map_err(|_| DbErr::Custom("the message writer stopped".into()))?;
        wait.await
            .map_err(|_| DbErr::Custom("the message writer stopped".into()))?
    }
}

async fn run(db: DatabaseConnection, mut rx: mpsc::Receiver<Job>) {
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH).await > 0 {
        let jobs = std::mem::take(&mut batch);
        if jobs.len() == 1 {
            for (row, done) in jobs {
                let _ = done.send(repo::messages::insert(&db, row).await.map(|_| ()));
            }
            continue;
        }
        let rows = jobs.iter().map(|(r, _)| r.clone()).collect();
        let together = async {
            let txn = db.begin().await?;
            repo::messages::insert_many(&txn, rows).await?;
            txn.commit().await
        };
        match together.await {
            Ok(()) => {
                for (_, done) in jobs {
                    let _ = done.send(Ok(()));
                }
            }
            // One bad row (a reused idempotency key, a session deleted meanwhile) fails the
            // statement: write them one by one so each request gets its own answer.
            Err(_) => {
                for (row, done) in jobs {
                    let _ = done.send(repo::messages::insert(&db, row).await.map(|_| ()));
                }
            }
        }
    }
}
