//! The service's Prometheus metrics (DESIGN.md §5), held by the ranking core as one struct
//! with its own registry — no globals — and rendered in the text exposition format. Both
//! transports record into it; it knows neither.

use crate::ranker::budget::Degradation;
use prometheus::{
    exponential_buckets, Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Every `reason` of `rejected_requests_total`, present at 0 from the start.
pub const REJECT_REASONS: [&str; 7] = [
    "overloaded",
    "not_ready",
    "deadline",
    "body_too_large",
    "too_many_candidates",
    "unsupported_media_type",
    "body_timeout",
];

/// Every `outcome` of `rank_requests_total`, present at 0 for each profile served.
pub const RANK_OUTCOMES: [&str; 2] = ["full", "degraded"];

/// Every metric giftrank exports, all prefixed `giftrank_`.
#[derive(Debug, Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub stage_duration: HistogramVec,
    pub rank_requests: IntCounterVec,
    pub degraded: IntCounterVec,
    pub candidates: Histogram,
    pub recall_size_used: Histogram,
    pub recall_size: IntGauge,
    pub model_info: IntGaugeVec,
    pub reloads: IntCounterVec,
    pub inflight: IntGauge,
    pub rejected: IntCounterVec,
    pub canary_requests: IntCounterVec,
    pub shadow_requests: IntCounterVec,
    pub shadow_overlap: Histogram,
    pub shadow_correlation: Histogram,
    pub policy_info: IntGaugeVec,
    pub policy_reloads: IntCounterVec,
}

/// Every `outcome` of `shadow_requests_total`, present at 0 from the start.
pub const SHADOW_OUTCOMES: [&str; 3] = ["scored", "skipped", "failed"];

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Records one answered request or call: its latency, and its count by route and
    /// status.
    pub fn observe_request(&self, route: &str, status: &str, elapsed: std::time::Duration) {
        self.request_duration
            .with_label_values(&[route])
            .observe(elapsed.as_secs_f64());
        self.http_requests.with_label_values(&[route, status]).inc();
    }

    pub fn new() -> Self {
        let registry = Registry::new_custom(Some("giftrank".into()), None).expect("valid prefix");
        // 100 µs … ~13 s.
        let latency = exponential_buckets(0.0001, 2.0, 18).expect("valid buckets");
        let sizes = exponential_buckets(1.0, 2.0, 15).expect("valid buckets");
        let metrics = Self {
            http_requests: IntCounterVec::new(
                Opts::new("http_requests_total", "Requests answered on the public listeners, by route and status. HTTP: the matched route and the status code. gRPC (HTTP/2 requests too): the route is the full method, e.g. /giftrank.v1.Ranker/Rank, and the status the HTTP code POST /rank answers for the same outcome (INVALID_ARGUMENT 400, RESOURCE_EXHAUSTED 413, or 503 when overloaded, UNAVAILABLE 503, DEADLINE_EXCEEDED 504)."),
                &["route", "status"],
            )
            .expect("metric"),
            request_duration: HistogramVec::new(
                HistogramOpts::new("request_duration_seconds", "Time from request arrival to response ready, by route (as in http_requests_total).")
                    .buckets(latency.clone()),
                &["route"],
            )
            .expect("metric"),
            stage_duration: HistogramVec::new(
                HistogramOpts::new(
                    "rank_stage_duration_seconds",
                    "Time spent in one ranking stage of a ranking request (/rank or gRPC Rank), by stage and profile: recall (the score model and every recall source on all candidates, and the Top-m selections) or rerank (the rerank model on the recalled set, and the final order). A profile without recall has only the recall stage.",
                )
                .buckets(latency),
                &["stage", "profile"],
            )
            .expect("metric"),
            rank_requests: IntCounterVec::new(
                Opts::new("rank_requests_total", "Ranking requests (/rank or gRPC Rank) answered with a ranking, by profile and outcome: full (the whole profile ran) or degraded."),
                &["profile", "outcome"],
            )
            .expect("metric"),
            degraded: IntCounterVec::new(
                Opts::new("degraded_requests_total", "Ranking requests answered degraded to fit their deadline, by level: reduced_m (fewer candidates reranked) or recall_only (no rerank: the score model's order)."),
                &["level"],
            )
            .expect("metric"),
            candidates: Histogram::with_opts(
                HistogramOpts::new("rank_candidates", "Candidates per ranking request (/rank or gRPC Rank).").buckets(sizes.clone()),
            )
            .expect("metric"),
            recall_size_used: Histogram::with_opts(
                HistogramOpts::new("rank_recall_size", "Recall size M used per ranking request (/rank or gRPC Rank).").buckets(sizes),
            )
            .expect("metric"),
            recall_size: IntGauge::new("recall_size", "Default recall size M of the serving model version.").expect("metric"),
            model_info: IntGaugeVec::new(
                Opts::new("model_info", "The serving model version (value 1 on the serving version's series)."),
                &["version"],
            )
            .expect("metric"),
            reloads: IntCounterVec::new(
                Opts::new("model_reloads_total", "Model versions checked for service, by outcome (loaded or rejected)."),
                &["outcome"],
            )
            .expect("metric"),
            inflight: IntGauge::new("inflight_requests", "Ranking requests (/rank or gRPC Rank) admitted and not yet done: reading their body, waiting for or running their ranking.").expect("metric"),
            rejected: IntCounterVec::new(
                Opts::new("rejected_requests_total", "Ranking requests (/rank or gRPC Rank) answered without a ranking for a reason other than invalid input: overloaded, not_ready, deadline, body_too_large, too_many_candidates, unsupported_media_type, body_timeout. Invalid requests are counted as status 400 in http_requests_total."),
                &["reason"],
            )
            .expect("metric"),
            canary_requests: IntCounterVec::new(
                Opts::new("canary_requests_total", "Ranking requests answered by the canary version of serving.toml, by version."),
                &["version"],
            )
            .expect("metric"),
            shadow_requests: IntCounterVec::new(
                Opts::new("shadow_requests_total", "Requests sampled for the shadow version of serving.toml, by outcome: scored (ranked again and compared), skipped (the service was busy or the shadow queue full), failed (the shadow version could not rank it)."),
                &["outcome"],
            )
            .expect("metric"),
            shadow_overlap: Histogram::with_opts(
                HistogramOpts::new("shadow_top_overlap", "Per shadowed request: |served top-k ∩ shadow top-k| / k, k = the items returned.")
                    .buckets((0..=20).map(|i| f64::from(i) / 20.0).collect()),
            )
            .expect("metric"),
            shadow_correlation: Histogram::with_opts(
                HistogramOpts::new("shadow_rank_correlation", "Per shadowed request: Spearman correlation between the served order of the top-k items and the order the shadow version gives those same items (1 = same order, -1 = reversed).")
                    .buckets((0..=20).map(|i| f64::from(i) / 10.0 - 1.0).collect()),
            )
            .expect("metric"),
            policy_info: IntGaugeVec::new(
                Opts::new("serving_policy_info", "The rollout policy in force (value 1): the pinned, canary and shadow versions, empty when none."),
                &["pin", "canary", "shadow"],
            )
            .expect("metric"),
            policy_reloads: IntCounterVec::new(
                Opts::new("policy_reloads_total", "Readings of serving.toml with new contents, by outcome: loaded, or rejected (invalid: the previous policy stays in force)."),
                &["outcome"],
            )
            .expect("metric"),
            registry,
        };
        let collectors: Vec<Box<dyn prometheus::core::Collector>> = vec![
            Box::new(metrics.http_requests.clone()),
            Box::new(metrics.request_duration.clone()),
            Box::new(metrics.stage_duration.clone()),
            Box::new(metrics.rank_requests.clone()),
            Box::new(metrics.degraded.clone()),
            Box::new(metrics.candidates.clone()),
            Box::new(metrics.recall_size_used.clone()),
            Box::new(metrics.recall_size.clone()),
            Box::new(metrics.model_info.clone()),
            Box::new(metrics.reloads.clone()),
            Box::new(metrics.inflight.clone()),
            Box::new(metrics.rejected.clone()),
            Box::new(metrics.canary_requests.clone()),
            Box::new(metrics.shadow_requests.clone()),
            Box::new(metrics.shadow_overlap.clone()),
            Box::new(metrics.shadow_correlation.clone()),
            Box::new(metrics.policy_info.clone()),
            Box::new(metrics.policy_reloads.clone()),
        ];
        for collector in collectors {
            metrics
                .registry
                .register(collector)
                .expect("unique metric names");
        }
        for outcome in ["loaded", "rejected"] {
            metrics.reloads.with_label_values(&[outcome]);
        }
        for level in Degradation::ALL {
            metrics.degraded.with_label_values(&[level.as_str()]);
        }
        for reason in REJECT_REASONS {
            metrics.rejected.with_label_values(&[reason]);
        }
        for outcome in SHADOW_OUTCOMES {
            metrics.shadow_requests.with_label_values(&[outcome]);
        }
        for outcome in ["loaded", "rejected"] {
            metrics.policy_reloads.with_label_values(&[outcome]);
        }
        metrics.policy(None, None, None);
        metrics
    }

    /// Marks `version` as the one serving, with the default M of its default profile, and
    /// creates the series of its profiles at 0.
    pub fn serving<'a>(
        &self,
        version: u64,
        default_m: usize,
        profiles: impl IntoIterator<Item = &'a str>,
    ) {
        self.model_info.reset();
        self.model_info
            .with_label_values(&[&version.to_string()])
            .set(1);
        self.recall_size.set(default_m as i64);
        for profile in profiles {
            for outcome in RANK_OUTCOMES {
                self.rank_requests.with_label_values(&[profile, outcome]);
            }
            self.stage_duration.with_label_values(&["recall", profile]);
        }
    }

    /// Marks the rollout policy in force: its pinned, canary and shadow versions.
    pub fn policy(&self, pin: Option<u64>, canary: Option<u64>, shadow: Option<u64>) {
        let name = |v: Option<u64>| v.map(|v| v.to_string()).unwrap_or_default();
        self.policy_info.reset();
        self.policy_info
            .with_label_values(&[&name(pin), &name(canary), &name(shadow)])
            .set(1);
    }

    /// The text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .expect("encoding into memory cannot fail");
        String::from_utf8(buffer).expect("the text format is UTF-8")
    }
}
