//! The server's life, wiring only: bind the public, admin and gRPC listeners, start the
//! ranking core and the background reloader, serve, and on the shutdown signal drain
//! within the deadline. Routes are `crate::http`'s and `crate::grpc`'s; connections are
//! served by `listen`; rescans are `reloader`'s.

mod listen;
pub mod reloader;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::ranker::Ranker;
pub use listen::ConnectionLimits;

/// A bound, loaded server, ready to run.
#[derive(Debug)]
pub struct Server {
    ranker: Arc<Ranker>,
    public: TcpListener,
    admin: TcpListener,
    grpc: TcpListener,
}

impl Server {
    /// Binds the listeners (public, admin and gRPC) and starts the ranking core, loading
    /// the version to serve if the repository has one (it starts, not ready, if not).
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
        let ranker = tokio::task::spawn_blocking(move || Ranker::start(config)).await?;
        Ok(Self {
            ranker,
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

    pub fn ranker(&self) -> Arc<Ranker> {
        self.ranker.clone()
    }

    /// Serves until `shutdown` resolves, then drains: readiness turns false (and the gRPC
    /// health status NOT_SERVING), the listeners stop accepting, requests already begun
    /// (their bodies still arriving, too) finish within the drain deadline.
    pub async fn run(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let Self {
            ranker,
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
        let config = &ranker.config;
        let limits = ConnectionLimits {
            max_connections: config.max_connections,
            header_read_timeout: config.header_read_timeout(),
            nodelay: false,
        };
        let grpc_limits = ConnectionLimits {
            nodelay: true,
            ..limits
        };
        let public_server = listen::serve(
            public,
            crate::http::router(ranker.clone()),
            limits,
            stopped(stop_rx.clone()),
        );
        let admin_server = listen::serve(
            admin,
            crate::http::admin::router(ranker.clone()),
            limits,
            stopped(stop_rx.clone()),
        );
        let grpc_server = listen::serve(
            grpc,
            crate::grpc::router(ranker.clone()).await,
            grpc_limits,
            stopped(stop_rx.clone()),
        );
        let background = reloader::spawn(ranker.clone(), stopped(stop_rx.clone()));
        tracing::info!(
            public = %public_addr,
            admin = %admin_addr,
            grpc = %grpc_addr,
            repository = %config.model_repo.display(),
            "giftrank serving"
        );
        let servers = tokio::spawn(async move {
            tokio::join!(public_server, admin_server, grpc_server);
        });

        shutdown.await;
        tracing::info!(
            drain_timeout_secs = ranker.config.drain_timeout_secs,
            "shutting down: draining"
        );
        ranker.begin_shutdown();
        let _ = stop_tx.send(true);
        background.abort();
        match tokio::time::timeout(ranker.config.drain_timeout(), servers).await {
            Ok(joined) => {
                joined?;
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
