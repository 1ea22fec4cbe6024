//! The ranking core, transport-neutral: the [`Ranker`] that every transport (HTTP, gRPC)
//! shares (`state`: configuration, metrics, admission of ranking requests and scoring
//! slots), one version in service (`serving`), the versions in service (`routing`: main,
//! canary, shadow) and their reload, pin and rollout-policy control (`models`), shadow
//! ranking (`shadow`), deadlines (`deadline`) and how they are spent (`budget`), a request
//! as one typed value (`request`), feature assembly (`features`), the pipeline that ranks
//! it (`pipeline`) with a second core for a large request ranked alone (`helper`), a
//! table's rows ranked as one request (`table`, for the Python package) and the one domain
//! error (`error`). Nothing here knows HTTP, gRPC or Python.

pub mod budget;
pub mod deadline;
pub mod error;
pub mod features;
mod helper;
pub mod models;
pub mod pipeline;
pub mod request;
pub mod routing;
pub mod serving;
pub mod shadow;
mod state;
pub mod table;

pub use deadline::{Arrived, Deadline};
pub use error::RankError;
pub use models::{PinError, PolicyView, ReloadOutcome, RepositoryView};
pub use pipeline::{rank_request, Ranked, RankedItem};
pub use request::RankRequest;
pub use routing::Routing;
pub use serving::Serving;
pub use state::{Admission, Ranker};
