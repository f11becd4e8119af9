//! Throughput of the emulator over loopback HTTPS with keep-alive, driven by kube-rs:
//!
//! - create throughput: ConfigMap creates from concurrent tasks sharing one client, and one at
//!   a time (round-trip latency);
//! - list: one LIST of 10,000 objects;
//! - watch fan-out: several watches open while 10,000 objects are created, timed until every
//!   watch has received every ADDED event.
//!
//! Run: `cargo bench -p kube-emulator --bench throughput`. Knobs (environment): BENCH_CREATES
//! (20000), BENCH_CONCURRENCY (32), BENCH_OBJECTS (10000), BENCH_WATCHERS (10).

use std::time::{Duration, Instant};

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::{ConfigMap, Namespace};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cm(name: String) -> ConfigMap {
    ConfigMap {
        metadata: ObjectMeta {
            name: Some(name),
            labels: Some([("bench".to_string(), "yes".to_string())].into()),
            ..Default::default()
        },
        data: Some([("key".to_string(), "value".to_string())].into()),
        ..Default::default()
    }
}

async fn namespace(client: &kube::Client, name: &str) -> Api<ConfigMap> {
    let ns = Namespace {
        metadata: ObjectMeta {
            name: Some(name.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    Api::namespaced(client.clone(), name)
}

/// Creates `count` ConfigMaps from `concurrency` tasks; returns creates per second.
async fn creates(api: &Api<ConfigMap>, prefix: &str, count: usize, concurrency: usize) -> f64 {
    let started = Instant::now();
    futures::stream::iter(0..count)
        .map(|i| {
            let api = api.clone();
            let name = format!("{prefix}-{i}");
            async move {
                api.create(&PostParams::default(), &cm(name))
                    .await
                    .expect("create")
            }
        })
        .buffer_unordered(concurrency)
        .for_each(|_| async {})
        .await;
    count as f64 / started.elapsed().as_secs_f64()
}

async fn fan_out(
    client: &kube::Client,
    objects: usize,
    watchers: usize,
    concurrency: usize,
) -> (Duration, f64) {
    let api = namespace(client, "fanout").await;
    let mut tasks = Vec::new();
    for _ in 0..watchers {
        let stream = api
            .watch(&WatchParams::default().timeout(600), "0")
            .await
            .expect("watch");
        tasks.push(tokio::spawn(async move {
            let mut stream = stream.boxed();
            let mut added = 0;
            // Every namespace starts with its kube-root-ca.crt ConfigMap.
            while added < objects + 1 {
                match stream
                    .try_next()
                    .await
                    .expect("watch stream")
                    .expect("stream open")
                {
                    WatchEvent::Added(_) => added += 1,
                    WatchEvent::Error(e) => panic!("watch error: {e:?}"),
                    _ => {}
                }
            }
        }));
    }
    let started = Instant::now();
    creates(&api, "obj", objects, concurrency).await;
    for t in tasks {
        t.await.expect("watcher");
    }
    let elapsed = started.elapsed();
    (elapsed, (objects * watchers) as f64 / elapsed.as_secs_f64())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let count = knob("BENCH_CREATES", 20_000);
        let concurrency = knob("BENCH_CONCURRENCY", 32);
        let objects = knob("BENCH_OBJECTS", 10_000);
        let watchers = knob("BENCH_WATCHERS", 10);
        // A window larger than the run, so no watch is cut off by 410 while measuring.
        let options = kube_emulator::Options { watch_window: 100_000, ..Default::default() };
        let emu = kube_emulator::start(options).await.expect("emulator");
        let client = emu.client();

        let api = namespace(&client, "bench").await;
        creates(&api, "warmup", 500, concurrency).await;
        let rate = creates(&api, "cm", count, concurrency).await;
        println!("create throughput: {rate:.0} creates/s ({count} ConfigMaps, {concurrency} concurrent, one kube-rs client, keep-alive)");
        let sequential = creates(&api, "seq", 2_000, 1).await;
        println!("sequential creates: {sequential:.0} creates/s ({:.2} ms per request round trip)", 1000.0 / sequential);

        let (elapsed, delivered) = fan_out(&client, objects, watchers, concurrency).await;
        println!(
            "watch fan-out: {objects} objects x {watchers} watches delivered in {:.2}s ({delivered:.0} events/s)",
            elapsed.as_secs_f64()
        );

        let fanout = Api::<ConfigMap>::namespaced(client.clone(), "fanout");
        let started = Instant::now();
        let listed = fanout.list(&ListParams::default()).await.expect("list");
        println!("list: {} objects in {:.0} ms", listed.items.len(), started.elapsed().as_secs_f64() * 1000.0);
        let started = Instant::now();
        let mut pages = 0;
        let mut params = ListParams::default().limit(500);
        loop {
            let page = fanout.list(&params).await.expect("page");
            pages += 1;
            match page.metadata.continue_.filter(|c| !c.is_empty()) {
                Some(token) => params = params.continue_token(&token),
                None => break,
            }
        }
        println!("paginated list: {pages} pages of 500 in {:.0} ms", started.elapsed().as_secs_f64() * 1000.0);
        emu.shutdown().await;
    });
}
