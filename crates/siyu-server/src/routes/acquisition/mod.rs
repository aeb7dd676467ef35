//! Acquisition's endpoints: the brand's channel accounts, its channel codes, their QR
//! images and public landing pages.

pub mod accounts;
pub mod codes;
pub mod landing;
pub mod qr;
pub mod reports;
pub mod store_codes;
