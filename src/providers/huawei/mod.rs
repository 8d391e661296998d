//! huawei: to be written (SPEC §11).
