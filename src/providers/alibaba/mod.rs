//! alibaba: to be written (SPEC §11).
