//! Consistency analysis of Jepsen histories, without a JVM.
//!
//! Read a history with [`history::read_history`], check it with [`list_append::check`], and
//! render the [`verdict::Verdict`] as Elle's result map with [`verdict::Verdict::to_edn`].

pub mod causal;
pub mod convergence;
pub mod crud_queue;
pub mod cycles;
pub mod edn;
mod fast_edn;
pub mod graph;
pub mod history;
pub mod list_append;
pub mod max_register;
pub mod models;
pub mod rw_register;
pub mod scalar;
pub mod synth;
pub mod txn_graph;
pub mod verdict;
