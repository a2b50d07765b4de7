//! Lines of the Prometheus text / OpenMetrics exposition format as `luminate import` and `luminate
//! write` read them: any input must end in a parsed line or an error message, never a panic.

#![no_main]

use libfuzzer_sys::fuzz_target;
use luminate_model::exposition::{Line, parse_line};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    for line in text.split('\n') {
        if let Ok(Line::Sample(sample)) = parse_line(line) {
            // Label names are unique and well formed, as the parser promises.
            for (i, (key, _)) in sample.labels.iter().enumerate() {
                assert!(!key.is_empty());
                assert!(sample.labels[..i].iter().all(|(k, _)| k != key));
            }
            assert!(!sample.name.is_empty());
            assert!(sample.labels.iter().all(|(k, _)| *k != "__name__"));
        }
    }
});
