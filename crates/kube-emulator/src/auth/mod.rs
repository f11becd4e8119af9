//! Authentication (ServiceAccount JWTs, TokenReview) and RBAC authorization.
