//! A PostgreSQL manager (work in progress).
