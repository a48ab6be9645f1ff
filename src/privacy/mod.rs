//! Pseudonyms, k-threshold and differentially private counts.
