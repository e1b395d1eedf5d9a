//! BPF filters applied to frames read from files (live captures filter in the kernel).

use std::collections::HashMap;

use super::CaptureError;

/// A BPF expression compiled once per link type it meets.
pub struct FileFilter {
    expr: String,
    programs: HashMap<u32, pcap::BpfProgram>,
}

impl FileFilter {
    /// Compiles `expr` for Ethernet to reject a bad expression up front.
    pub fn new(expr: &str) -> Result<FileFilter, CaptureError> {
        let mut f = FileFilter {
            expr: expr.to_string(),
            programs: HashMap::new(),
        };
        f.program(crate::decode::linktype::ETHERNET)?;
        Ok(f)
    }

    fn program(&mut self, linktype: u32) -> Result<&pcap::BpfProgram, CaptureError> {
        if !self.programs.contains_key(&linktype) {
            let err = |message: String| CaptureError::Filter {
                filter: self.expr.clone(),
                message,
            };
            let dead = pcap::Capture::dead(pcap::Linktype(linktype as i32))
                .map_err(|e| err(e.to_string()))?;
            let prog = dead
                .compile(&self.expr, true)
                .map_err(|e| err(e.to_string()))?;
            self.programs.insert(linktype, prog);
        }
        Ok(&self.programs[&linktype])
    }

    /// True when the frame passes the filter.
    pub fn matches(&mut self, linktype: u32, data: &[u8]) -> Result<bool, CaptureError> {
        Ok(self.program(linktype)?.filter(data))
    }
}
