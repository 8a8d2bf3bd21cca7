//! Runs the Kubernetes API TEST DOUBLE until stdin closes, with one pod
//! (`default/memif-app`), writing its kubeconfig into the given dir.
//! For measuring clients by hand; the tests use the library.

use kube_api_double::KubeApiDouble;
use serde_json::json;

fn main() {
    let dir = std::env::args().nth(1).expect("usage: kube-api-double DIR");
    let double = KubeApiDouble::start(std::path::Path::new(&dir));
    double.add_pod("default", "memif-app", "uid-1", json!({"containers": []}));
    println!("{}", double.kubeconfig().display());
    let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut Vec::new());
}
