//! The HTTP client of one worker: sends a transaction to a node and says how it completed.

use std::time::Duration;

use checker::history::Mop;
use serde_json::{Value, json};
use ureq::Agent;

/// How an operation completed, in Jepsen's terms.
#[derive(Debug, PartialEq)]
pub enum Completion {
    /// It happened; reads are filled in.
    Ok(Vec<Mop>),
    /// It certainly did not happen.
    Fail(String),
    /// It may or may not have happened.
    Info(String),
}

/// The largest reply read from a node's control routes.
const REPLY_LIMIT: u64 = 1 << 30;

/// A client of one node's API.
pub struct Client {
    agent: Agent,
    base: String,
}

fn to_json(mop: &Mop) -> Value {
    match mop {
        Mop::Append { key, value } => json!({"f": "append", "k": key, "v": value}),
        Mop::Read { key, value } => json!({"f": "r", "k": key, "v": value}),
        Mop::Write { key, value } => json!({"f": "w", "k": key, "v": value}),
        Mop::ReadRegister { key, value } => json!({"f": "r", "k": key, "v": value}),
    }
}

/// A micro-op of a reply; `registers` tells a register read from a list read.
fn from_json(value: &Value, registers: bool) -> Option<Mop> {
    let key = value.get("k")?.as_i64()?;
    match value.get("f")?.as_str()? {
        "w" if registers => Some(Mop::Write {
            key,
            value: value.get("v")?.as_i64()?,
        }),
        "r" if registers => Some(Mop::ReadRegister {
            key,
            value: match value.get("v")? {
                Value::Null => None,
                v => Some(v.as_i64()?),
            },
        }),
        "append" => Some(Mop::Append {
            key,
            value: value.get("v")?.as_i64()?,
        }),
        "r" => Some(Mop::Read {
            key,
            value: match value.get("v")? {
                Value::Null => None,
                list => Some(
                    list.as_array()?
                        .iter()
                        .map(Value::as_i64)
                        .collect::<Option<_>>()?,
                ),
            },
        }),
        _ => None,
    }
}

impl Client {
    /// A client of the node at `address` (`host:port`), giving up on a request after `timeout`.
    pub fn new(address: &str, timeout: Duration) -> Self {
        let agent: Agent = Agent::config_builder()
            .timeout_global(Some(timeout))
            .timeout_connect(Some(Duration::from_secs(1)))
            .http_status_as_error(false)
            .build()
            .into();
        Client {
            agent,
            base: format!("http://{address}"),
        }
    }

    /// Runs a transaction: list-append through `/sql-txn`, registers (writes and register
    /// reads) through `/mww-txn`. A request that never reached the node is a `Fail`; one whose
    /// reply was lost (timeout, broken connection) is `Info`, since it may have committed.
    pub fn txn(&self, mops: &[Mop]) -> Completion {
        let registers = mops
            .iter()
            .any(|m| matches!(m, Mop::Write { .. } | Mop::ReadRegister { .. }));
        let route = if registers { "mww-txn" } else { "sql-txn" };
        let body = json!({
            "type": "invoke",
            "f": "txn",
            "value": mops.iter().map(to_json).collect::<Vec<_>>(),
        });
        let mut response = match self
            .agent
            .post(format!("{}/{route}", self.base))
            .send_json(&body)
        {
            Ok(r) => r,
            Err(e) => return classify_error(e),
        };
        let status = response.status().as_u16();
        let reply: Value = match response.body_mut().read_json() {
            Ok(v) => v,
            Err(e) => return Completion::Info(format!("unreadable reply (HTTP {status}): {e}")),
        };
        let error = reply
            .get("error")
            .and_then(Value::as_str)
            .unwrap_or("no error given")
            .to_owned();
        match reply.get("type").and_then(Value::as_str) {
            Some("ok") => {
                let mops = reply
                    .get("value")
                    .and_then(Value::as_array)
                    .and_then(|items| {
                        items
                            .iter()
                            .map(|m| from_json(m, registers))
                            .collect::<Option<Vec<_>>>()
                    });
                match mops {
                    Some(mops) if mops.len() == body["value"].as_array().map_or(0, Vec::len) => {
                        Completion::Ok(mops)
                    }
                    _ => Completion::Info(format!("malformed ok reply: {reply}")),
                }
            }
            Some("fail") => Completion::Fail(error),
            // A 4xx means the node rejected the request without running it.
            _ if (400..500).contains(&status) => {
                Completion::Fail(format!("HTTP {status}: {error}"))
            }
            _ => Completion::Info(format!("HTTP {status}: {error}")),
        }
    }

    /// GETs a JSON document from the node.
    pub fn get_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self.agent.get(format!("{}{path}", self.base)).call()?;
        Self::json_reply("GET", path, response)
    }

    /// POSTs to one of the node's control routes and returns its JSON reply.
    pub fn post_json(&self, path: &str) -> anyhow::Result<Value> {
        let response = self
            .agent
            .post(format!("{}{path}", self.base))
            .send_empty()?;
        Self::json_reply("POST", path, response)
    }

    fn json_reply(
        method: &str,
        path: &str,
        mut response: ureq::http::Response<ureq::Body>,
    ) -> anyhow::Result<Value> {
        let status = response.status();
        // A node's CRUD queue after a long run is tens of megabytes.
        let value: Value = response
            .body_mut()
            .with_config()
            .limit(REPLY_LIMIT)
            .read_json()?;
        anyhow::ensure!(
            status.is_success(),
            "{method} {path}: HTTP {status}: {value}"
        );
        Ok(value)
    }
}

fn classify_error(e: ureq::Error) -> Completion {
    use ureq::Timeout;
    let never_sent = match &e {
        ureq::Error::ConnectionFailed | ureq::Error::HostNotFound => true,
        ureq::Error::Io(io) => io.kind() == std::io::ErrorKind::ConnectionRefused,
        ureq::Error::Timeout(phase) => matches!(phase, Timeout::Resolve | Timeout::Connect),
        _ => false,
    };
    if never_sent {
        Completion::Fail(format!("not sent: {e}"))
    } else {
        Completion::Info(format!("outcome unknown: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_a_fail() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        drop(listener);
        let client = Client::new(&address, Duration::from_secs(2));
        let completion = client.txn(&[Mop::Read {
            key: 1,
            value: None,
        }]);
        assert!(matches!(completion, Completion::Fail(_)), "{completion:?}");
    }

    #[test]
    fn a_silent_server_is_info() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let client = Client::new(&address, Duration::from_millis(300));
        let completion = client.txn(&[Mop::Append { key: 1, value: 1 }]);
        assert!(matches!(completion, Completion::Info(_)), "{completion:?}");
        drop(listener);
    }

    #[test]
    fn mops_round_trip_through_json() {
        let mops = [
            Mop::Append { key: 1, value: 2 },
            Mop::Read {
                key: 3,
                value: Some(vec![4, 5]),
            },
        ];
        for mop in mops {
            assert_eq!(from_json(&to_json(&mop), false), Some(mop));
        }
        let registers = [
            Mop::Write { key: 1, value: 2 },
            Mop::ReadRegister {
                key: 3,
                value: Some(4),
            },
            Mop::ReadRegister {
                key: 3,
                value: None,
            },
        ];
        for mop in registers {
            assert_eq!(from_json(&to_json(&mop), true), Some(mop));
        }
    }
}
