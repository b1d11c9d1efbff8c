//! Load shapes: when each request is due, as offsets from the start of the run.
//!
//! An open-model schedule: request i is sent at its time whether or not earlier ones
//! have been answered (within the concurrency limit), as a real spike arrives. Without a
//! target rate the run is closed-model: each worker sends its next request as soon as
//! the previous one is answered.

use std::time::Duration;

/// The shape of a run.
#[derive(Debug, Clone, PartialEq)]
pub enum Shape {
    /// As fast as the concurrency allows.
    Unpaced,
    /// A steady rate, requests per second.
    Constant { rate: f64 },
    /// Rate rising linearly from `from` to `to` over the run.
    Ramp { from: f64, to: f64 },
    /// Rate starting at `from`, rising by `step` every `every`.
    Step {
        from: f64,
        step: f64,
        every: Duration,
    },
    /// A base rate, plus a burst of `burst` requests all due at `at`.
    Spike { base: f64, burst: u64, at: Duration },
}

impl Shape {
    /// The send offsets (seconds) of `total` requests, sorted; None for unpaced runs.
    pub fn schedule(&self, total: u64) -> Option<Vec<f64>> {
        let n = total as usize;
        let mut times = Vec::with_capacity(n);
        match *self {
            Shape::Unpaced => return None,
            Shape::Constant { rate } => {
                times.extend((0..n).map(|i| i as f64 / rate.max(1e-9)));
            }
            Shape::Ramp { from, to } => {
                // Rate r(t) = from + k t; the count sent by t is from t + k t^2 / 2. With
                // T the run's length, from T + k T^2 / 2 = n and k = (to - from) / T,
                // so T = 2n / (from + to). Invert the count for each i.
                let from = from.max(1e-9);
                let length = 2.0 * n as f64 / (from + to.max(1e-9));
                let k = (to - from) / length;
                for i in 0..n {
                    let c = i as f64;
                    let t = if k.abs() < 1e-12 {
                        c / from
                    } else {
                        (-from + (from * from + 2.0 * k * c).max(0.0).sqrt()) / k
                    };
                    times.push(t);
                }
            }
            Shape::Step { from, step, every } => {
                // Level k lasts `every` at rate from + k step; times are computed from
                // the level's start so rounding never drifts across levels.
                let step_len = every.as_secs_f64().max(1e-3);
                let mut level = 0u64;
                let mut carry = 0.0; // time into a level where its first request falls
                while times.len() < n {
                    let rate = (from + step * level as f64).max(1e-9);
                    let start = level as f64 * step_len;
                    let mut j = 0u64;
                    loop {
                        let offset = carry + j as f64 / rate;
                        if offset >= step_len - 1e-9 || times.len() == n {
                            carry = offset - step_len;
                            break;
                        }
                        times.push(start + offset);
                        j += 1;
                    }
                    carry = carry.max(0.0);
                    level += 1;
                }
            }
            Shape::Spike { base, burst, at } => {
                let at = at.as_secs_f64();
                let base_count = n.saturating_sub(burst as usize);
                times.extend((0..base_count).map(|i| i as f64 / base.max(1e-9)));
                times.extend(std::iter::repeat_n(at, n - base_count));
                times.sort_by(f64::total_cmp);
            }
        }
        Some(times)
    }

    /// Parses `constant:RATE`, `ramp:FROM:TO`, `step:FROM:STEP:SECONDS`,
    /// `spike:BASE:BURST:AT_SECONDS`, or `unpaced`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let parts: Vec<&str> = text.split(':').collect();
        let num = |i: usize| -> Result<f64, String> {
            parts
                .get(i)
                .ok_or_else(|| format!("shape `{text}` is missing a number"))?
                .parse::<f64>()
                .map_err(|_| format!("shape `{text}`: `{}` is not a number", parts[i]))
                .and_then(|v| {
                    if v.is_finite() && v >= 0.0 {
                        Ok(v)
                    } else {
                        Err(format!("shape `{text}`: numbers must be 0 or more"))
                    }
                })
        };
        let arity = |n: usize| {
            if parts.len() == n {
                Ok(())
            } else {
                Err(format!("shape `{text}` takes {} numbers", n - 1))
            }
        };
        match parts[0] {
            "unpaced" => arity(1).map(|()| Shape::Unpaced),
            "constant" => arity(2).and_then(|()| Ok(Shape::Constant { rate: num(1)? })),
            "ramp" => arity(3).and_then(|()| {
                Ok(Shape::Ramp {
                    from: num(1)?,
                    to: num(2)?,
                })
            }),
            "step" => arity(4).and_then(|()| {
                Ok(Shape::Step {
                    from: num(1)?,
                    step: num(2)?,
                    every: Duration::from_secs_f64(num(3)?),
                })
            }),
            "spike" => arity(4).and_then(|()| {
                Ok(Shape::Spike {
                    base: num(1)?,
                    burst: num(2)? as u64,
                    at: Duration::from_secs_f64(num(3)?),
                })
            }),
            other => Err(format!(
                "unknown shape `{other}`: use unpaced, constant:RATE, ramp:FROM:TO, step:FROM:STEP:SECONDS or spike:BASE:BURST:AT"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_spaces_evenly() {
        let t = Shape::Constant { rate: 100.0 }.schedule(5).unwrap();
        assert_eq!(t, vec![0.0, 0.01, 0.02, 0.03, 0.04]);
    }

    #[test]
    fn ramp_ends_at_the_expected_length() {
        // 0 -> 200 rps: mean 100 rps, so 1000 requests take 10 s.
        let t = Shape::Ramp {
            from: 0.0,
            to: 200.0,
        }
        .schedule(1000)
        .unwrap();
        assert!((t[999] - 10.0).abs() < 0.1, "{}", t[999]);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
        // Denser at the end than at the start.
        assert!(t[1] - t[0] > t[999] - t[998]);
    }

    #[test]
    fn spike_puts_the_burst_at_one_instant() {
        let t = Shape::Spike {
            base: 10.0,
            burst: 50,
            at: Duration::from_secs(2),
        }
        .schedule(70)
        .unwrap();
        assert_eq!(t.iter().filter(|x| **x == 2.0).count(), 50);
        assert_eq!(t.len(), 70);
        assert!(t.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn step_rises() {
        let t = Shape::Step {
            from: 10.0,
            step: 10.0,
            every: Duration::from_secs(1),
        }
        .schedule(40)
        .unwrap();
        // 10 in the first second, 20 in the second.
        assert_eq!(t.iter().filter(|x| **x < 1.0).count(), 10);
        assert_eq!(t.iter().filter(|x| **x >= 1.0 && **x < 2.0).count(), 20);
    }

    #[test]
    fn parse_forms() {
        assert_eq!(
            Shape::parse("constant:50").unwrap(),
            Shape::Constant { rate: 50.0 }
        );
        assert!(Shape::parse("spike:10:500:2").is_ok());
        assert!(Shape::parse("ramp:1").is_err());
        assert!(Shape::parse("wave:1").is_err());
        assert!(Shape::parse("constant:-1").is_err());
    }
}
