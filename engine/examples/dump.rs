use std::sync::Arc;
use strata_engine::*;
struct S(std::sync::Mutex<Vec<(String, Part, usize)>>, std::path::PathBuf);
impl SegmentSink for S {
    fn segment(&self, s: SegmentOut) -> std::result::Result<(), String> {
        let name = match s.part { Part::Init => "init.mp4".to_string(), Part::Media(n) => format!("seg_{n:05}.bin") };
        let d = self.1.join(&s.rendition); std::fs::create_dir_all(&d).unwrap();
        std::fs::write(d.join(name), &s.data).unwrap();
        self.0.lock().unwrap().push((s.rendition, s.part, s.data.len()));
        Ok(())
    }
}
fn main() {
    let a: Vec<String> = std::env::args().collect();
    init().unwrap();
    let p = probe(std::path::Path::new(&a[1])).unwrap();
    println!("{p:#?}");
    let job = JobSpec { format: a[2].parse().unwrap(), ..Default::default() };
    let plan = plan(&p, &job, &Capabilities::detect()).unwrap();
    let s = Arc::new(S(Default::default(), a[3].clone().into()));
    let r = exec::run(&plan, s.clone(), &mut |p| eprintln!("{p:?}"), &Default::default());
    println!("{r:?}");
    for x in s.0.lock().unwrap().iter() { println!("{x:?}"); }
}
