//! Acquisition's endpoints: the brand's channel accounts, its channel codes, their QR
//! images and public landing pages, group codes, and tracked links with their public
//! redirects.

pub mod accounts;
pub mod codes;
pub mod group_codes;
pub mod landing;
pub mod link_redirect;
pub mod links;
pub mod qr;
pub mod reports;
pub mod store_codes;
