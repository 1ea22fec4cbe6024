//! The HTTP service: shared state (the serving model version behind an atomic pointer),
//! the public and admin routers, and the server's life from bind to graceful drain.
//!
//! - `request` decodes JSON `/rank` bodies and `protobuf` protobuf ones (for `/rank` and
//!   gRPC); `features` turns them into model columns; `rank` is the handler; `info` the
//!   read-only routes; `admin` the admin routes; `metrics` the Prometheus metrics; `error`
//!   the one error type. The gRPC listener's service is [`crate::grpc`].

mod admin;
mod error;
pub mod features;
mod info;
pub mod metrics;
pub mod protobuf;
pub mod rank;
pub mod request;

use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use arc_swap::ArcSwapOption;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower_http::request_id::{
    MakeRequestId, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::{DefaultOnResponse, TraceLayer};

use crate::bundle::Bundle;
use crate::config::Config;
use crate::repository::{Scanner, VersionState, VersionStatus};
pub use error::ApiError;
use features::FeatureIndex;
use metrics::Metrics;

/// One model version in service, with what requests need precomputed.
#[derive(Debug)]
pub struct Serving {
    pub bundle: Bundle,
    pub loaded_at: SystemTime,
    features: FeatureIndex,
}

impl Serving {
    fn new(bundle: Bundle) -> Self {
        let features = FeatureIndex::new(&bundle);
        Self {
            bundle,
            loaded_at: SystemTime::now(),
            features,
        }
    }
}

/// What only the reloader touches: the repository scanner and the pin.
#[derive(Debug)]
struct Control {
    scanner: Scanner,
    pinned: Option<u64>,
}

/// State shared by every request.
#[derive(Debug)]
pub struct AppState {
    pub config: Config,
    pub metrics: Metrics,
    serving: ArcSwapOption<Serving>,
    versions: Mutex<Vec<VersionStatus>>,
    control: Mutex<Control>,
    shutting_down: AtomicBool,
    inflight: Arc<Semaphore>,
    /// Counts completed reloads, so callers can await the next one.
    reloads: watch::Sender<u64>,
    /// [`AppState::is_ready`], for those who follow it (the gRPC health service).
    readiness: watch::Sender<bool>,
}

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// The serving version is unchanged.
    Unchanged(Option<u64>),
    /// A version was swapped in.
    Swapped { from: Option<u64>, to: u64 },
}

/// Why a pin was refused.
#[derive(Debug, thiserror::Error)]
pub enum PinError {
    #[error("version {0} is not in the model repository")]
    Absent(u64),
    #[error("version {0} cannot serve: {1}")]
    Unservable(u64, String),
    #[error("{0}")]
    Repository(String),
}

impl AppState {
    /// Builds the state and loads the version to serve; fails when no version is valid.
    pub fn start(config: Config) -> anyhow::Result<Arc<Self>> {
        let state = Arc::new(Self {
            metrics: Metrics::new(),
            serving: ArcSwapOption::empty(),
            versions: Mutex::new(Vec::new()),
            control: Mutex::new(Control {
                scanner: Scanner::new(config.model_repo.clone()),
                pinned: None,
            }),
            shutting_down: AtomicBool::new(false),
            inflight: Arc::new(Semaphore::new(config.max_inflight_requests)),
            reloads: watch::Sender::new(0),
            readiness: watch::Sender::new(false),
            config,
        });
        state.reload().with_context(|| {
            format!(
                "cannot read the model repository {}",
                state.config.model_repo.display()
            )
        })?;
        if state.serving_now().is_none() {
            let versions = state.versions();
            let detail: Vec<String> = versions
                .iter()
                .map(|v| match &v.state {
                    VersionState::Rejected(reason) => {
                        format!("version {}: rejected: {reason}", v.version)
                    }
                    other => format!("version {}: {other:?}", v.version),
                })
                .collect();
            anyhow::bail!(
                "no valid model version in {}{}",
                state.config.model_repo.display(),
                if detail.is_empty() {
                    " (no numbered version directories)".to_owned()
                } else {
                    format!(":\n  {}", detail.join("\n  "))
                }
            );
        }
        Ok(state)
    }

    /// A place among the `/rank` requests in flight, or `None` when all are taken
    /// (the request is shed, not queued).
    pub fn admit(&self) -> Option<tokio::sync::OwnedSemaphorePermit> {
        self.inflight.clone().try_acquire_owned().ok()
    }

    /// Whether the calling ranking job is the only one admitted: then a second core is
    /// free to share its scoring.
    pub fn ranking_alone(&self) -> bool {
        self.inflight.available_permits() + 1 >= self.config.max_inflight_requests
    }

    /// The serving version, for one request's whole life.
    pub fn serving_now(&self) -> Option<Arc<Serving>> {
        self.serving.load_full()
    }

    pub fn is_ready(&self) -> bool {
        !self.shutting_down.load(Ordering::SeqCst) && self.serving.load().is_some()
    }

    /// True once shutdown has begun (it never ends).
    pub fn is_shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::SeqCst)
    }

    /// A receiver of [`AppState::is_ready`] that changes when readiness does.
    pub fn subscribe_readiness(&self) -> watch::Receiver<bool> {
        self.readiness.subscribe()
    }

    fn publish_readiness(&self) {
        let ready = self.is_ready();
        self.readiness
            .send_if_modified(|published| std::mem::replace(published, ready) != ready);
    }

    /// Every version on disk with its state, as of the last scan.
    pub fn versions(&self) -> Vec<VersionStatus> {
        self.versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// A receiver that changes after every completed reload (rescan), whatever its outcome.
    pub fn subscribe_reloads(&self) -> watch::Receiver<u64> {
        self.reloads.subscribe()
    }

    pub fn pinned(&self) -> Option<u64> {
        self.control
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .pinned
    }

    /// Rescans the repository and swaps in the version that should serve, if it changed.
    /// Blocking (it reads and validates models): call it off the async runtime.
    pub fn reload(&self) -> std::io::Result<ReloadOutcome> {
        let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        self.reload_locked(&mut control)
    }

    fn reload_locked(&self, control: &mut Control) -> std::io::Result<ReloadOutcome> {
        let mut scan = control.scanner.scan()?;
        for (version, reason) in &scan.newly_rejected {
            tracing::warn!(version, %reason, "model version rejected");
            self.metrics.reloads.with_label_values(&["rejected"]).inc();
        }
        let current = self.serving.load().as_ref().map(|s| s.bundle.version);
        let target = scan.choose(control.pinned);
        let fresh = target.and_then(|v| scan.fresh.iter().position(|b| b.version == v));
        let outcome = match target {
            Some(version) if Some(version) != current || fresh.is_some() => {
                let loaded = match fresh {
                    Some(i) => Ok(scan.fresh.swap_remove(i)),
                    None => control.scanner.load(version),
                };
                match loaded {
                    Ok(bundle) => {
                        self.metrics.serving(version, bundle.default_m);
                        self.metrics.reloads.with_label_values(&["loaded"]).inc();
                        tracing::info!(
                            version,
                            previous = ?current,
                            direct_trees = bundle.direct.num_trees(),
                            stage2_trees = bundle.stage2.num_trees(),
                            canary_rows = bundle.canary_rows,
                            "model version serving"
                        );
                        self.serving.store(Some(Arc::new(Serving::new(bundle))));
                        ReloadOutcome::Swapped {
                            from: current,
                            to: version,
                        }
                    }
                    Err(e) => {
                        tracing::warn!(version, reason = %e, "model version rejected while loading");
                        self.metrics.reloads.with_label_values(&["rejected"]).inc();
                        ReloadOutcome::Unchanged(current)
                    }
                }
            }
            _ => ReloadOutcome::Unchanged(current),
        };
        let serving = self.serving.load().as_ref().map(|s| s.bundle.version);
        let mut versions = scan.versions;
        for v in &mut versions {
            if Some(v.version) == serving && v.state == VersionState::Ready {
                v.state = VersionState::Serving;
            }
        }
        *self.versions.lock().unwrap_or_else(|e| e.into_inner()) = versions;
        self.publish_readiness();
        self.reloads.send_modify(|n| *n += 1);
        Ok(outcome)
    }

    /// Pins `version` (it must be valid) and serves it until unpinned.
    pub fn pin(&self, version: u64) -> Result<ReloadOutcome, PinError> {
        let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        let scan = control
            .scanner
            .scan()
            .map_err(|e| PinError::Repository(e.to_string()))?;
        match scan
            .versions
            .iter()
            .find(|v| v.version == version)
            .map(|v| &v.state)
        {
            None => return Err(PinError::Absent(version)),
            Some(VersionState::Rejected(reason)) => {
                return Err(PinError::Unservable(version, reason.clone()))
            }
            Some(VersionState::Incomplete) => {
                return Err(PinError::Unservable(
                    version,
                    "incomplete: no bundle.toml yet".into(),
                ))
            }
            Some(_) => {}
        }
        let previous = control.pinned.replace(version);
        let outcome = self
            .reload_locked(&mut control)
            .map_err(|e| PinError::Repository(e.to_string()))?;
        if self.serving.load().as_ref().map(|s| s.bundle.version) != Some(version) {
            control.pinned = previous;
            return Err(PinError::Unservable(
                version,
                "it failed validation while loading".into(),
            ));
        }
        tracing::info!(version, "model version pinned");
        Ok(outcome)
    }

    /// Removes the pin: the highest valid version serves again.
    pub fn unpin(&self) -> std::io::Result<ReloadOutcome> {
        let mut control = self.control.lock().unwrap_or_else(|e| e.into_inner());
        control.pinned = None;
        tracing::info!("model version unpinned");
        self.reload_locked(&mut control)
    }

    /// Readiness turns false; in-flight requests still finish.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
        self.publish_readiness();
    }
}

/// The public router: `/rank` and the read-only routes. Admin routes never exist here.
pub fn router(state: Arc<AppState>) -> Router {
    let body_limit = state.config.max_body_bytes;
    Router::new()
        .route("/rank", post(rank::handle))
        .route("/healthz", get(info::healthz))
        .route("/readyz", get(info::readyz))
        .route("/metrics", get(info::metrics))
        .route("/v1/models", get(info::models))
        .layer(DefaultBodyLimit::max(body_limit))
        .layer(middleware::from_fn_with_state(state.clone(), track))
        .with_state(state)
        .layer(TraceLayer::new_for_http()
            .make_span_with(|request: &Request| {
                let id = request.headers().get("x-request-id").and_then(|v| v.to_str().ok()).unwrap_or("");
                tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %id)
            })
            .on_response(DefaultOnResponse::new().level(tracing::Level::INFO)))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(SetRequestIdLayer::x_request_id(RequestIds::default()))
}

/// Counts and times every request by matched route and status.
async fn track(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let start = Instant::now();
    let response = next.run(request).await;
    state
        .metrics
        .observe_request(&route, response.status().as_str(), start.elapsed());
    response
}

/// Request ids for requests that come without `x-request-id`: process start time and a counter.
#[derive(Debug, Clone)]
struct RequestIds {
    prefix: String,
    next: Arc<AtomicU64>,
}

impl Default for RequestIds {
    fn default() -> Self {
        let started = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        Self {
            prefix: format!("gr-{started:x}"),
            next: Arc::new(AtomicU64::new(1)),
        }
    }
}

impl MakeRequestId for RequestIds {
    fn make_request_id<B>(&mut self, _: &axum::http::Request<B>) -> Option<RequestId> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        HeaderValue::from_str(&format!("{}-{n}", self.prefix))
            .ok()
            .map(RequestId::new)
    }
}

/// A bound, loaded server, ready to run.
#[derive(Debug)]
pub struct Server {
    state: Arc<AppState>,
    public: TcpListener,
    admin: TcpListener,
    grpc: TcpListener,
}

impl Server {
    /// Loads the model version to serve and binds the listeners: public, admin and gRPC.
    pub async fn bind(config: Config) -> anyhow::Result<Self> {
        let public = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let admin = TcpListener::bind(config.admin_listen)
            .await
            .with_context(|| format!("cannot listen on {} (admin)", config.admin_listen))?;
        let grpc = TcpListener::bind(config.grpc_listen)
            .await
            .with_context(|| format!("cannot listen on {} (gRPC)", config.grpc_listen))?;
        let state = tokio::task::spawn_blocking(move || AppState::start(config)).await??;
        Ok(Self {
            state,
            public,
            admin,
            grpc,
        })
    }

    pub fn public_addr(&self) -> std::io::Result<SocketAddr> {
        self.public.local_addr()
    }

    pub fn admin_addr(&self) -> std::io::Result<SocketAddr> {
        self.admin.local_addr()
    }

    pub fn grpc_addr(&self) -> std::io::Result<SocketAddr> {
        self.grpc.local_addr()
    }

    pub fn state(&self) -> Arc<AppState> {
        self.state.clone()
    }

    /// Serves until `shutdown` resolves, then drains: readiness turns false (and the gRPC
    /// health status NOT_SERVING), the listeners stop accepting, in-flight requests finish
    /// within the drain deadline.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            state,
            public,
            admin,
            grpc,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let stopped = |mut rx: watch::Receiver<bool>| async move {
            let _ = rx.wait_for(|stop| *stop).await;
        };
        let (public_addr, admin_addr, grpc_addr) = (
            public.local_addr()?,
            admin.local_addr()?,
            grpc.local_addr()?,
        );
        let public_server = axum::serve(public, router(state.clone()))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future();
        let admin_server = axum::serve(admin, admin::router(state.clone()))
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future();
        // Small gRPC frames must not wait for Nagle's algorithm.
        let grpc = grpc.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY on a gRPC connection");
            }
        });
        let grpc_server = axum::serve(grpc, crate::grpc::router(state.clone()).await)
            .with_graceful_shutdown(stopped(stop_rx.clone()))
            .into_future();
        let background = admin::spawn_reloader(state.clone(), stopped(stop_rx.clone()));
        tracing::info!(
            public = %public_addr,
            admin = %admin_addr,
            grpc = %grpc_addr,
            repository = %state.config.model_repo.display(),
            "giftrank serving"
        );
        let servers =
            tokio::spawn(async move { tokio::try_join!(public_server, admin_server, grpc_server) });

        shutdown.await;
        tracing::info!(
            drain_timeout_secs = state.config.drain_timeout_secs,
            "shutting down: draining"
        );
        state.begin_shutdown();
        let _ = stop_tx.send(true);
        background.abort();
        match tokio::time::timeout(state.config.drain_timeout(), servers).await {
            Ok(joined) => {
                joined??;
                tracing::info!("drained; exiting");
            }
            Err(_) => {
                tracing::warn!("drain deadline passed with requests still in flight; exiting")
            }
        }
        Ok(())
    }
}

/// Resolves on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is
/// called (inside a runtime), not when the future is first polled.
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    #[cfg(unix)]
    let interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt()).ok();
    async move {
        #[cfg(unix)]
        {
            let wait = |signal: Option<tokio::signal::unix::Signal>| async move {
                match signal {
                    Some(mut signal) => {
                        signal.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! {
                () = wait(terminate) => {}
                () = wait(interrupt) => {}
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
