//! Picking the next token from logits: greedy at temperature 0, otherwise softmax at
//! the temperature restricted to the nucleus of mass `top_p`.

use rand::Rng;

/// Sampling settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sampling {
    pub temperature: f32,
    pub top_p: f32,
}

impl Sampling {
    /// Temperature when the assistant sets none; low, because small models wander.
    pub const DEFAULT_TEMPERATURE: f32 = 0.3;
    /// Nucleus mass when the assistant sets none.
    pub const DEFAULT_TOP_P: f32 = 0.9;

    /// Reads an assistant's settings, filling in the defaults.
    pub fn from_settings(settings: &crate::api::types::Settings) -> Self {
        Sampling {
            temperature: settings
                .temperature
                .map_or(Self::DEFAULT_TEMPERATURE, |t| t.clamp(0.0, 2.0) as f32),
            top_p: settings
                .top_p
                .map_or(Self::DEFAULT_TOP_P, |p| p.clamp(0.0, 1.0) as f32),
        }
    }
}

/// Returns the index of the largest logit.
pub fn argmax(logits: &[f32]) -> u32 {
    let mut best = 0;
    for (index, value) in logits.iter().enumerate() {
        if *value > logits[best] {
            best = index;
        }
    }
    best as u32
}

/// Draws a token id.
pub fn sample(logits: &[f32], sampling: Sampling, rng: &mut impl Rng) -> u32 {
    if sampling.temperature <= 0.0 || sampling.top_p <= 0.0 || logits.is_empty() {
        return argmax(logits);
    }
    let max = logits[argmax(logits) as usize];
    let inv_t = 1.0 / sampling.temperature;
    // Tokens below e^-30 of the best one cannot matter; skipping them keeps the sort
    // short.
    let mut candidates: Vec<(u32, f32)> = logits
        .iter()
        .enumerate()
        .filter_map(|(index, logit)| {
            let scaled = (logit - max) * inv_t;
            (scaled > -30.0).then(|| (index as u32, scaled.exp()))
        })
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    let total: f32 = candidates.iter().map(|(_, p)| p).sum();
    let mut kept = 0;
    let mut mass = 0.0;
    for (_, p) in &candidates {
        kept += 1;
        mass += p / total;
        if mass >= sampling.top_p {
            break;
        }
    }
    candidates.truncate(kept.max(1));
    let kept_total: f32 = candidates.iter().map(|(_, p)| p).sum();
    let mut point = rng.random::<f32>() * kept_total;
    for (id, p) in &candidates {
        if point < *p {
            return *id;
        }
        point -= p;
    }
    candidates[candidates.len() - 1].0
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    #[test]
    fn zero_temperature_is_greedy() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let logits = [0.1, 3.0, 2.9, -1.0];
        let greedy = Sampling {
            temperature: 0.0,
            top_p: 1.0,
        };
        assert_eq!(sample(&logits, greedy, &mut rng), 1);
    }

    #[test]
    fn small_nucleus_keeps_only_the_top_token() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let logits = [0.0, 5.0, 4.0, 0.0];
        let narrow = Sampling {
            temperature: 1.0,
            top_p: 0.1,
        };
        for _ in 0..50 {
            assert_eq!(sample(&logits, narrow, &mut rng), 1);
        }
    }

    #[test]
    fn sampling_follows_the_distribution() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let logits = [0.0, (3.0f32).ln()];
        let wide = Sampling {
            temperature: 1.0,
            top_p: 1.0,
        };
        let ones = (0..4000)
            .filter(|_| sample(&logits, wide, &mut rng) == 1)
            .count();
        assert!((2800..3200).contains(&ones), "{ones} of 4000");
    }
}
