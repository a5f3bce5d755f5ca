//! # distpos-testnets
//!
//! Will hold the ready-made local networks (`duo`, `trio`), the launcher they use, the
//! end-to-end suite that runs real `distpos` processes on 127.0.0.1 with ephemeral
//! ports, and the benchmark harness (DESIGN §1, §10). Not built yet: see the issue
//! "testnets/, the newcomer's first run, and the benchmark harness".
