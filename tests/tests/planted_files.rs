//! The plugin runs as root and writes into a directory containers can
//! write to: a symlink planted there must never make it touch anything
//! else.

use integration_tests::{Netns, Network, Ovs};

#[test]
fn a_shared_dir_that_is_a_symlink_is_refused_and_its_target_untouched() {
    let net = Network::memif(Ovs::shared());
    let victim = net.dir("victim");
    std::fs::create_dir_all(&victim).unwrap();
    let shared = net.dir("shared");
    std::fs::create_dir_all(&shared).unwrap();
    let id = "plantedlink01";
    std::os::unix::fs::symlink(&victim, shared.join(&id[..12])).unwrap();

    let err = net.add(id, &Netns::new()).err(103);
    assert!(
        err["msg"]
            .as_str()
            .unwrap()
            .contains("symlink is not followed"),
        "{err}"
    );
    assert!(
        integration_tests::list(&victim).is_empty(),
        "nothing written through the link"
    );
    assert!(!net.ovs.bridge_exists(&net.bridge));
    std::fs::remove_file(shared.join(&id[..12])).unwrap();
    net.assert_nothing_left(id);
}

#[test]
fn symlinks_planted_at_the_data_and_socket_paths_are_replaced_not_followed() {
    let net = Network::vhostuser(Ovs::shared(), Some("client"));
    let id = "plantedfile01";
    let dir = net.dir("shared").join(&id[..12]);
    std::fs::create_dir_all(&dir).unwrap();
    let victim = net.dir("victim-file");
    std::fs::write(&victim, "precious").unwrap();
    let data = dir.join(format!("configData-{}-net1.json", &id[..12]));
    let socket = dir.join(format!("{}-net1", &id[..12]));
    std::os::unix::fs::symlink(&victim, &data).unwrap();
    std::os::unix::fs::symlink(&victim, &socket).unwrap();

    net.add(id, &Netns::new()).ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    assert!(
        !std::fs::symlink_metadata(&data)
            .unwrap()
            .file_type()
            .is_symlink(),
        "the container data replaced the planted link"
    );
    net.del(id).ok();
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
    // The dir was there before the ADD, so it stays; what ADD put in it goes.
    assert!(
        integration_tests::list(&dir).is_empty(),
        "{:?}",
        integration_tests::list(&dir)
    );
    std::fs::remove_dir(&dir).unwrap();
    net.assert_nothing_left(id);
}
