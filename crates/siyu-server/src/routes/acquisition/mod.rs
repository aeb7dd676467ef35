//! Acquisition's endpoints: the brand's channel accounts and its channel codes.

pub mod accounts;
pub mod codes;
