//! Optimiser updates. Gradient clipping is `ops::elementwise::sum_squares` + `scale_inplace`.
pub mod adam;
