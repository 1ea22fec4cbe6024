//! The objective named on a model's `objective=` line, and the transform LightGBM applies
//! to the raw tree sums of that objective to give `Booster.predict`'s output.

use super::error::ModelError;

/// The output transform of an objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Transform {
    Identity,
    /// `sign(x)·x²`: the regression family trained with `reg_sqrt`.
    SignedSquare,
    /// `1 / (1 + exp(-σ·x))` for each output.
    Sigmoid(f64),
    /// `exp(x)`: poisson, gamma, tweedie.
    Exp,
    /// `log(1 + exp(x))`: cross_entropy_lambda.
    Log1pExp,
    /// Softmax across the outputs of one row.
    Softmax,
}

/// A parsed `objective=` line.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Objective {
    pub name: String,
    pub transform: Transform,
    /// `num_class:` for the multiclass objectives.
    pub num_class: Option<usize>,
}

impl Objective {
    /// A model with no `objective=` line (trained with a custom objective): raw output.
    pub fn none() -> Self {
        Self {
            name: "none".into(),
            transform: Transform::Identity,
            num_class: None,
        }
    }

    /// Parses the value of `objective=`, e.g. `binary sigmoid:0.7` or `regression sqrt`.
    pub fn parse(value: &str) -> Result<Self, ModelError> {
        let mut words = value.split_ascii_whitespace();
        let name = words.next().unwrap_or_default();
        let mut sqrt = false;
        let mut sigmoid = None;
        let mut num_class = None;
        for word in words {
            match word.split_once(':') {
                None if word == "sqrt" => sqrt = true,
                Some(("sigmoid", v)) => sigmoid = Some(number(v, word)?),
                Some(("num_class", v)) => {
                    num_class = Some(v.parse::<usize>().map_err(|_| bad(word))?);
                }
                // Training-only parameters (alpha, tweedie_variance_power, …) do not
                // change the prediction.
                Some(_) => {}
                None => return Err(bad(word)),
            }
        }
        let transform = match name {
            "regression" | "regression_l1" | "huber" | "fair" | "quantile" | "mape" => {
                if sqrt {
                    Transform::SignedSquare
                } else {
                    Transform::Identity
                }
            }
            "lambdarank" | "rank_xendcg" | "custom" => Transform::Identity,
            "binary" | "multiclassova" => Transform::Sigmoid(sigmoid.ok_or_else(|| {
                ModelError::new(format!("objective `{name}` needs a `sigmoid:` parameter"))
            })?),
            "cross_entropy" => Transform::Sigmoid(1.0),
            "cross_entropy_lambda" => Transform::Log1pExp,
            "poisson" | "gamma" | "tweedie" => Transform::Exp,
            "multiclass" => Transform::Softmax,
            _ => return Err(ModelError::new(format!("unknown objective `{name}`"))),
        };
        if matches!(name, "multiclass" | "multiclassova") && num_class.is_none() {
            return Err(ModelError::new(format!(
                "objective `{name}` needs a `num_class:` parameter"
            )));
        }
        Ok(Self {
            name: name.to_owned(),
            transform,
            num_class,
        })
    }
}

fn bad(word: &str) -> ModelError {
    ModelError::new(format!("unrecognised objective parameter `{word}`"))
}

fn number(v: &str, word: &str) -> Result<f64, ModelError> {
    v.parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| bad(word))
}

impl Transform {
    /// Transforms the raw scores of one row in place.
    #[inline]
    pub fn apply(self, scores: &mut [f64]) {
        match self {
            Transform::Identity => {}
            Transform::SignedSquare => {
                for s in scores {
                    let sign = f64::from(u8::from(*s > 0.0)) - f64::from(u8::from(*s < 0.0));
                    *s = sign * *s * *s;
                }
            }
            Transform::Sigmoid(sigma) => {
                for s in scores {
                    *s = 1.0 / (1.0 + (-sigma * *s).exp());
                }
            }
            Transform::Exp => {
                for s in scores {
                    *s = s.exp();
                }
            }
            Transform::Log1pExp => {
                for s in scores {
                    *s = s.exp().ln_1p();
                }
            }
            Transform::Softmax => {
                let max = scores.iter().copied().fold(scores[0], f64::max);
                let mut sum = 0.0;
                for s in scores.iter_mut() {
                    *s = (*s - max).exp();
                    sum += *s;
                }
                for s in scores.iter_mut() {
                    *s /= sum;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_parameters_that_change_the_output() {
        assert_eq!(
            Objective::parse("binary sigmoid:0.7").unwrap().transform,
            Transform::Sigmoid(0.7)
        );
        assert_eq!(
            Objective::parse("regression sqrt").unwrap().transform,
            Transform::SignedSquare
        );
        assert_eq!(
            Objective::parse("huber").unwrap().transform,
            Transform::Identity
        );
        assert_eq!(
            Objective::parse("tweedie tweedie_variance_power:1.5")
                .unwrap()
                .transform,
            Transform::Exp
        );
        let multi = Objective::parse("multiclass num_class:3").unwrap();
        assert_eq!(
            (multi.transform, multi.num_class),
            (Transform::Softmax, Some(3))
        );
    }

    #[test]
    fn refuses_unknown_objectives_and_missing_parameters() {
        assert!(Objective::parse("regresion").is_err());
        assert!(Objective::parse("binary").is_err());
        assert!(Objective::parse("multiclass").is_err());
        assert!(Objective::parse("binary sigmoid:x").is_err());
    }

    #[test]
    fn signed_square_keeps_the_sign_and_zero() {
        let mut s = [-2.0, 0.0, 3.0];
        Transform::SignedSquare.apply(&mut s);
        assert_eq!(s, [-4.0, 0.0, 9.0]);
    }
}
