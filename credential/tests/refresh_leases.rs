//! The refresh protocol with a refresher of our own (no provider): leases left by a crashed
//! process, a refresh parked while an operator revokes or rotates, failures that leave the lease
//! free, and a refreshed credential that breaks its kind's rules.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use credential::store::{Precondition, RefreshLease, Store};
use credential::{
    Active, Credential, DateTime, Error, ExposeSecret, KeyRing, Managed, Manager, MemoryStore,
    Principal, RefreshContext, RefreshError, Refresher, SecretString, Utc,
};
use tokio::sync::{Semaphore, mpsc};
use tokio::task::JoinHandle;

#[derive(Credential)]
#[credential(kind = "session")]
struct Session {
    #[secret]
    #[credential(validate(non_empty))]
    token: SecretString,
    #[credential(expires_at)]
    expires: Option<DateTime<Utc>>,
}

fn session(token: &str, expires_in_seconds: i64) -> Session {
    Session {
        token: token.into(),
        expires: Some(Utc::now() + chrono::Duration::seconds(expires_in_seconds)),
    }
}

/// What the refresher does when called.
#[derive(Clone, Copy)]
enum Answer {
    Token,
    Unavailable,
    Invalid,
}

/// Counts its calls, tells the test when it is called, and, when gated, waits for a permit.
struct Counting {
    calls: Arc<AtomicUsize>,
    called: mpsc::UnboundedSender<()>,
    gate: Option<Arc<Semaphore>>,
    answer: Answer,
}

#[async_trait]
impl Refresher for Counting {
    type Credential = Session;

    async fn refresh(&self, _: &Session, _: &RefreshContext) -> Result<Session, RefreshError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let _ = self.called.send(());
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        match self.answer {
            Answer::Token => Ok(session(&format!("refreshed-{call}"), 3600)),
            Answer::Unavailable => Err(RefreshError::Unavailable { reason: "HTTP 503".into() }),
            Answer::Invalid => Ok(session("", 3600)),
        }
    }
}

struct Fixture {
    manager: Manager,
    ring: KeyRing,
    store: Arc<MemoryStore>,
    calls: Arc<AtomicUsize>,
    called: mpsc::UnboundedReceiver<()>,
    gate: Arc<Semaphore>,
}

async fn fixture(answer: Answer, gated: bool) -> Fixture {
    let store = Arc::new(MemoryStore::new());
    let calls = Arc::new(AtomicUsize::new(0));
    let (called_tx, called) = mpsc::unbounded_channel();
    let gate = Arc::new(Semaphore::new(0));
    let refresher = Counting {
        calls: Arc::clone(&calls),
        called: called_tx,
        gate: gated.then(|| Arc::clone(&gate)),
        answer,
    };
    let ring = KeyRing::generate().unwrap();
    let manager = Manager::builder()
        .store(Arc::clone(&store))
        .key_ring(ring.clone())
        .refresher(refresher)
        .build()
        .await
        .unwrap();
    manager.create("s", session("first", -1)).await.unwrap().activate().await.unwrap();
    Fixture { manager, ring, store, calls, called, gate }
}

impl Fixture {
    async fn get(&self) -> credential::Result<Arc<Session>> {
        self.manager.context(Principal::named("reader")).get::<Session>("s").await
    }

    /// Puts a lease of a process that is gone on the record, lapsing `in_seconds` from now, tagged
    /// as that process's manager would have.
    async fn crashed_lease(&self, in_seconds: i64) {
        let id = format!("{}/s", self.manager.environment());
        let mut record = self.store.get(&id).await.unwrap().unwrap();
        let revision = record.meta.revision;
        record.meta.refresh.lease = Some(RefreshLease::new(
            "crashed/0",
            Utc::now() + chrono::Duration::seconds(in_seconds),
        ));
        record.meta.tag = credential::hazmat::tag(&self.ring, &record).unwrap();
        self.store.put(record, Precondition::Revision(revision)).await.unwrap();
    }

    /// A read of the expired credential whose refresh is now parked in the gated refresher, and
    /// the credential as an operator loads it meanwhile.
    async fn park_a_refresh(
        &mut self,
    ) -> (JoinHandle<credential::Result<Arc<Session>>>, Managed<Session, Active>) {
        let manager = self.manager.clone();
        let reader = tokio::spawn(async move {
            manager.context(Principal::named("reader")).get::<Session>("s").await
        });
        self.called.recv().await.unwrap();
        let active = self.manager.load::<Session>("s").await.unwrap().into_active().unwrap();
        (reader, active)
    }

    async fn lease(&self) -> Option<RefreshLease> {
        let id = format!("{}/s", self.manager.environment());
        self.store.get(&id).await.unwrap().unwrap().meta.refresh.lease
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lapsed_lease_of_a_crashed_process_is_taken_over() {
    let fixture = fixture(Answer::Token, false).await;
    fixture.crashed_lease(-1).await;
    assert_eq!(fixture.get().await.unwrap().token.expose_secret(), "refreshed-1");
    assert_eq!(fixture.lease().await, None, "the new version clears the lease");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_lease_holds_the_refresh_back_until_it_lapses() {
    let fixture = fixture(Answer::Token, false).await;
    fixture.crashed_lease(1).await;
    // The wait bound (10 s) outlasts the lease: the read gets the token refreshed after it.
    assert_eq!(fixture.get().await.unwrap().token.expose_secret(), "refreshed-1");
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoke_while_the_refresh_is_parked_holds() {
    let mut fixture = fixture(Answer::Token, true).await;
    let (reader, active) = fixture.park_a_refresh().await;
    active.revoke("leaked").await.unwrap();
    fixture.gate.add_permits(1);
    assert!(matches!(reader.await.unwrap(), Err(Error::Revoked { .. })));
    assert!(matches!(fixture.get().await, Err(Error::Revoked { .. })));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_rotation_while_the_refresh_is_parked_wins() {
    let mut fixture = fixture(Answer::Token, true).await;
    let (reader, active) = fixture.park_a_refresh().await;
    active.rotate(session("from-the-operator", 3600)).await.unwrap().commit().await.unwrap();
    fixture.gate.add_permits(1);
    assert_eq!(reader.await.unwrap().unwrap().token.expose_secret(), "from-the-operator");
    assert_eq!(fixture.get().await.unwrap().token.expose_secret(), "from-the-operator");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_lets_a_refresh_in_flight_land_before_it_stops_changing_anything() {
    let mut fixture = fixture(Answer::Token, true).await;
    let (reader, _active) = fixture.park_a_refresh().await;
    let manager = fixture.manager.clone();
    let shutting_down = tokio::spawn(async move { manager.shutdown().await });
    // Once reads are refused, shutdown waits for the parked refresh: it cannot end before it.
    let filter = credential::store::ListFilter::all();
    while !matches!(fixture.manager.list(&filter).await, Err(Error::ShutDown)) {
        tokio::task::yield_now().await;
    }
    assert!(!shutting_down.is_finished());
    fixture.gate.add_permits(1);
    shutting_down.await.unwrap().unwrap();
    // The provider's answer was committed, not dropped halfway (a rotated refresh token lost).
    let id = format!("{}/s", fixture.manager.environment());
    let record = fixture.store.get(&id).await.unwrap().unwrap();
    assert_eq!(record.versions.iter().map(|version| version.version).max(), Some(2));
    assert_eq!(record.meta.refresh.lease, None);
    let _ = reader.await.unwrap();
    assert!(matches!(fixture.get().await, Err(Error::ShutDown)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_refresh_frees_the_lease_and_never_serves_the_expired_token() {
    let fixture = fixture(Answer::Unavailable, false).await;
    let error = fixture.get().await.unwrap_err();
    assert!(matches!(&error, Error::RefreshFailed { transient: true, .. }), "{error:?}");
    assert_eq!(error.code(), "refresh_failed");
    assert_eq!(fixture.lease().await, None);
    // For a second the failure is the answer, without asking the refresher again; then a read
    // tries again, without waiting for a lease to lapse.
    let remembered = fixture.get().await.unwrap_err();
    assert_eq!(remembered.to_string(), error.to_string());
    assert_eq!(fixture.calls.load(Ordering::SeqCst), 1);
    for _ in 0..100 {
        assert!(fixture.get().await.is_err());
        if fixture.calls.load(Ordering::SeqCst) == 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the refresh was not tried again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refreshed_credential_that_breaks_the_rules_is_not_stored() {
    let fixture = fixture(Answer::Invalid, false).await;
    let error = fixture.get().await.unwrap_err();
    assert!(matches!(&error, Error::RefreshFailed { transient: false, .. }), "{error:?}");
    assert_eq!(fixture.manager.history("s").await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lease_that_does_not_outlast_the_deadline_is_refused_at_build() {
    let built = Manager::builder()
        .store(MemoryStore::new())
        .key_ring(KeyRing::generate().unwrap())
        .refresh_config(
            credential::RefreshConfig::default()
                .deadline(Duration::from_secs(30), Duration::from_secs(30)),
        )
        .build()
        .await;
    assert!(matches!(built, Err(Error::Config { .. })));
}
