//! Multinomial logistic regression (softmax) with L2 regularisation, trained full-batch by
//! L-BFGS: a convex problem, so the optimum does not depend on a learning rate or an epoch
//! count. Dense features; matrix products by `matrixmultiply`.

use serde::{Deserialize, Serialize};

/// A trained linear softmax model: `logits = W x + b`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Softmax {
    pub classes: usize,
    pub dims: usize,
    /// `[classes × dims]`, row-major.
    pub weights: Vec<f32>,
    pub bias: Vec<f32>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TrainConfig {
    /// L2 penalty on the weights (not the bias), per example: the loss is
    /// `mean cross-entropy + l2/2 · |W|²`.
    pub l2: f32,
    pub max_iterations: usize,
    /// Stop when the gradient's largest component falls below this.
    pub tolerance: f32,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            l2: 1e-3,
            max_iterations: 300,
            tolerance: 1e-5,
        }
    }
}

/// `C = A · Bᵀ` for row-major `A [m × k]` and `B [n × k]`, added to `C [m × n]` (beta = 1).
fn gemm_abt(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= n * k && c.len() >= m * n);
    // SAFETY: the asserts above bound every access the dimensions and strides imply.
    unsafe {
        matrixmultiply::sgemm(
            m,
            k,
            n,
            1.0,
            a.as_ptr(),
            k as isize,
            1,
            b.as_ptr(),
            1,
            k as isize,
            1.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// `C = Aᵀ · B` for row-major `A [m × k]`, `B [m × n]`, into `C [k × n]` (overwritten).
fn gemm_atb(a: &[f32], b: &[f32], c: &mut [f32], m: usize, k: usize, n: usize) {
    assert!(a.len() >= m * k && b.len() >= m * n && c.len() >= k * n);
    // SAFETY: as above.
    unsafe {
        matrixmultiply::sgemm(
            k,
            m,
            n,
            1.0,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            n as isize,
            1,
            0.0,
            c.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Softmax of each row of `logits [rows × classes]`, in place.
pub fn softmax_rows(logits: &mut [f32], classes: usize) {
    for row in logits.chunks_exact_mut(classes) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut sum = 0.0;
        for v in row.iter_mut() {
            *v = (*v - max).exp();
            sum += *v;
        }
        row.iter_mut().for_each(|v| *v /= sum);
    }
}

impl Softmax {
    /// Logits for `x [rows × dims]`: `[rows × classes]`.
    pub fn logits(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut out = Vec::with_capacity(rows * self.classes);
        for _ in 0..rows {
            out.extend_from_slice(&self.bias);
        }
        gemm_abt(x, &self.weights, &mut out, rows, self.dims, self.classes);
        out
    }

    /// Class probabilities for `x [rows × dims]`.
    pub fn probabilities(&self, x: &[f32], rows: usize) -> Vec<f32> {
        let mut p = self.logits(x, rows);
        softmax_rows(&mut p, self.classes);
        p
    }

    /// Fits the model to `x [rows × dims]` with labels `y` (each `< classes`).
    pub fn train(x: &[f32], y: &[usize], classes: usize, dims: usize, config: TrainConfig) -> Self {
        Self::train_weighted(x, y, None, classes, dims, config)
    }

    /// As [`Softmax::train`], each example's cross-entropy weighted by `weights` (the loss is
    /// their weighted mean): for training sets where one text gives several rows, or where a
    /// class must count more than its size.
    pub fn train_weighted(
        x: &[f32],
        y: &[usize],
        weights: Option<&[f32]>,
        classes: usize,
        dims: usize,
        config: TrainConfig,
    ) -> Self {
        let rows = y.len();
        assert_eq!(x.len(), rows * dims, "features do not match labels");
        if let Some(w) = weights {
            assert_eq!(w.len(), rows, "weights do not match labels");
        }
        let weight = |r: usize| weights.map_or(1.0, |w| w[r]);
        let total: f64 = (0..rows)
            .map(|r| f64::from(weight(r)))
            .sum::<f64>()
            .max(1e-12);
        let n_params = classes * dims + classes;
        // Loss and gradient of the packed parameters [W | b].
        let eval = |theta: &[f32], grad: &mut [f32]| -> f32 {
            let model = Softmax {
                classes,
                dims,
                weights: theta[..classes * dims].to_vec(),
                bias: theta[classes * dims..].to_vec(),
            };
            let mut p = model.probabilities(x, rows);
            let mut loss = 0.0f64;
            for (r, &label) in y.iter().enumerate() {
                let row = &mut p[r * classes..(r + 1) * classes];
                let w = weight(r);
                loss -= f64::from(w) * f64::from(row[label].max(1e-12).ln());
                row[label] -= 1.0;
                // Scaled by the example's share of the total weight: the gradient of the mean.
                let scale = (f64::from(w) / total) as f32;
                row.iter_mut().for_each(|v| *v *= scale);
            }
            // dW = (P - Y)ᵀ X / n  → [classes × dims]
            let (gw, gb) = grad.split_at_mut(classes * dims);
            gemm_atb(&p, x, gw, rows, classes, dims);
            gb.iter_mut().for_each(|g| *g = 0.0);
            for row in p.chunks_exact(classes) {
                gb.iter_mut().zip(row).for_each(|(g, v)| *g += v);
            }
            let mut reg = 0.0f64;
            for (g, w) in gw.iter_mut().zip(&theta[..classes * dims]) {
                *g += config.l2 * w;
                reg += f64::from(w * w);
            }
            (loss / total + 0.5 * f64::from(config.l2) * reg) as f32
        };
        let theta = lbfgs(
            vec![0.0; n_params],
            eval,
            config.max_iterations,
            config.tolerance,
        );
        Softmax {
            classes,
            dims,
            weights: theta[..classes * dims].to_vec(),
            bias: theta[classes * dims..].to_vec(),
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Minimises `f` (returning the value and writing the gradient) from `x` by L-BFGS with 10
/// correction pairs and a backtracking (Armijo) line search.
pub fn lbfgs(
    mut x: Vec<f32>,
    mut f: impl FnMut(&[f32], &mut [f32]) -> f32,
    max_iterations: usize,
    tolerance: f32,
) -> Vec<f32> {
    const M: usize = 10;
    let n = x.len();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    let mut s_hist: Vec<Vec<f32>> = Vec::new();
    let mut y_hist: Vec<Vec<f32>> = Vec::new();
    let mut new_g = vec![0.0; n];
    for _ in 0..max_iterations {
        if g.iter().fold(0.0f32, |m, v| m.max(v.abs())) < tolerance {
            break;
        }
        // Two-loop recursion: d = -H g.
        let mut q = g.clone();
        let mut alphas = Vec::with_capacity(s_hist.len());
        for (s, y) in s_hist.iter().zip(&y_hist).rev() {
            let rho = 1.0 / dot(y, s);
            let a = rho * dot(s, &q);
            q.iter_mut().zip(y).for_each(|(qi, yi)| *qi -= a * yi);
            alphas.push((a, rho));
        }
        if let (Some(s), Some(y)) = (s_hist.last(), y_hist.last()) {
            let gamma = dot(s, y) / dot(y, y);
            q.iter_mut().for_each(|v| *v *= gamma);
        }
        for ((s, y), (a, rho)) in s_hist.iter().zip(&y_hist).zip(alphas.into_iter().rev()) {
            let b = rho * dot(y, &q);
            q.iter_mut().zip(s).for_each(|(qi, si)| *qi += (a - b) * si);
        }
        let mut d: Vec<f32> = q.into_iter().map(|v| -v).collect();
        let mut slope = dot(&g, &d);
        if slope >= 0.0 {
            // Not a descent direction: restart from steepest descent.
            s_hist.clear();
            y_hist.clear();
            d = g.iter().map(|v| -v).collect();
            slope = dot(&g, &d);
        }
        let mut step = if s_hist.is_empty() {
            1.0 / g.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12)
        } else {
            1.0
        };
        let mut accepted = None;
        for _ in 0..30 {
            let candidate: Vec<f32> = x.iter().zip(&d).map(|(xi, di)| xi + step * di).collect();
            let fc = f(&candidate, &mut new_g);
            if fc <= fx + 1e-4 * step * slope {
                accepted = Some((candidate, fc));
                break;
            }
            step *= 0.5;
        }
        let Some((candidate, fc)) = accepted else {
            break;
        };
        let s: Vec<f32> = candidate.iter().zip(&x).map(|(a, b)| a - b).collect();
        let y: Vec<f32> = new_g.iter().zip(&g).map(|(a, b)| a - b).collect();
        if dot(&s, &y) > 1e-10 {
            s_hist.push(s);
            y_hist.push(y);
            if s_hist.len() > M {
                s_hist.remove(0);
                y_hist.remove(0);
            }
        }
        let converged = (fx - fc).abs() <= 1e-9 * fx.abs().max(1.0);
        x = candidate;
        fx = fc;
        std::mem::swap(&mut g, &mut new_g);
        if converged {
            break;
        }
    }
    x
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbfgs_finds_the_minimum_of_a_quadratic() {
        // f(x) = Σ (i+1)(x_i - i)²
        let x = lbfgs(
            vec![0.0; 5],
            |x, g| {
                let mut f = 0.0;
                for i in 0..5 {
                    let w = (i + 1) as f32;
                    let d = x[i] - i as f32;
                    f += w * d * d;
                    g[i] = 2.0 * w * d;
                }
                f
            },
            100,
            1e-6,
        );
        for (i, v) in x.iter().enumerate() {
            assert!((v - i as f32).abs() < 1e-3, "{x:?}");
        }
    }

    #[test]
    fn softmax_regression_separates_three_clusters() {
        let centers = [[2.0f32, 0.0], [-2.0, 1.0], [0.0, -2.5]];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for (c, center) in centers.iter().enumerate() {
            for k in 0..30 {
                let jitter = (
                    (k * 37 % 11) as f32 / 11.0 - 0.5,
                    (k * 53 % 7) as f32 / 7.0 - 0.5,
                );
                x.extend([center[0] + jitter.0, center[1] + jitter.1]);
                y.push(c);
            }
        }
        let model = Softmax::train(&x, &y, 3, 2, TrainConfig::default());
        let p = model.probabilities(&x, y.len());
        let correct = y
            .iter()
            .enumerate()
            .filter(|(r, label)| {
                let row = &p[r * 3..r * 3 + 3];
                row.iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map(|(i, _)| i)
                    == Some(**label)
            })
            .count();
        assert_eq!(correct, 90);
        let sums: Vec<f32> = p.chunks(3).map(|r| r.iter().sum()).collect();
        assert!(sums.iter().all(|s| (s - 1.0).abs() < 1e-5));
    }
}
