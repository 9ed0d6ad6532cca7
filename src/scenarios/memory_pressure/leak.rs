//! Part 5: the leak check, judged on the fitted slope's confidence interval.

use super::*;
use tidepool_pools::controls;

/// Part 5: leak check, lease cycles on a pool of two. With the leaking
/// client, each cycle also opens a page outside the lease's context and a
/// CDP connection, and keeps both.
pub(super) async fn leak_check(
    server: &FixtureServer,
    s: &mut MetricSummary,
    profile: RunProfile,
    variant: Variant,
) -> Result<()> {
    let cycles = match variant {
        // Four samples of a leak of ~1000 MB per 100 cycles are plenty.
        Variant::LeakingClient => 50,
        _ => profile.scaled(100, 1000),
    };
    let pool = BrowserPool::new(BrowserPoolConfig {
        min_idle: 2,
        max_size: 2,
        warm_up: 2,
        memory: None,
        ..BrowserPoolConfig::default()
    })
    .await?;
    let warmup = 20;
    let measure_pool = |pool: &BrowserPool| {
        let pids = controls::pids(pool);
        pids.iter().map(|&p| pss_mb(p)).sum::<f64>()
    };
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    let mut baseline = None;
    let (mut leaked, mut abandoned) = (Vec::new(), Vec::new());
    for c in 0..cycles {
        {
            let lease = pool.acquire().await?;
            let page = lease.new_page(&server.url(&format!("/page/{c}"))).await?;
            lease.goto(&server.url(&format!("/page/{}", c + 1))).await?;
            drop(page);
            if variant == Variant::LeakingClient {
                let url = server.url(&format!("/page/{c}"));
                // A page target in the browser's default context that no
                // one will close: created, never attached or disposed.
                let page = lease
                    .call(
                        "opening a leaked page",
                        lease.browser().execute(
                            chromiumoxide::cdp::browser_protocol::target::CreateTargetParams::new(
                                url,
                            ),
                        ),
                    )
                    .await?
                    .result
                    .target_id;
                let connection = chromiumoxide::Browser::connect(controls::websocket_url(&lease))
                    .await
                    .map_err(|e| Error::config("control", e.to_string()))?;
                leaked.push((page, connection));
                // And every tenth cycle a helper browser it never closes.
                if c % 10 == 0 {
                    let executable = crate::browser::locate_chromium(None)?;
                    let flags: Vec<String> = crate::browser::DEFAULT_FLAGS
                        .iter()
                        .map(|f| f.to_string())
                        .collect();
                    if let Some(left) = crate::scenarios::naive::launch(&executable, &flags)
                        .await?
                        .abandon()
                    {
                        abandoned.push(left);
                    }
                }
            }
        }
        if c + 1 == warmup || (c + 1) % 10 == 0 {
            pool.wait_until_idle(2, Duration::from_secs(30)).await;
            let pool2 = pool.clone();
            let pss = tokio::task::spawn_blocking(move || measure_pool(&pool2))
                .await
                .map_err(|e| Error::task("memory_pressure", e))?;
            if c + 1 == warmup {
                let procs = tagged_processes(&own_tag_prefix()).len();
                baseline = Some((procs, open_fds(), pss));
            }
            if c + 1 >= warmup {
                xs.push((c + 1) as f64);
                ys.push(pss);
            }
        }
    }
    pool.wait_until_idle(2, Duration::from_secs(30)).await;
    let (procs0, fds0, pss0) = baseline.unwrap_or((0, 0, 0.0));
    let pool2 = pool.clone();
    let pss_end = tokio::task::spawn_blocking(move || measure_pool(&pool2))
        .await
        .map_err(|e| Error::task("memory_pressure", e))?;
    let procs_end = tagged_processes(&own_tag_prefix()).len();
    let fds_end = open_fds();
    // The leaked connections' handler tasks are never polled: dropping them
    // closes their sockets.
    drop(leaked);
    for left in abandoned {
        left.clean_up().await;
    }
    pool.close().await;
    let fit = least_squares(&xs, &ys);
    s.count("leak_cycles", cycles as u64);
    s.count("process_delta", procs_end.abs_diff(procs0) as u64);
    s.count("fd_delta", fds_end.abs_diff(fds0) as u64);
    s.ratio_of("pss_growth_ratio", pss_end, pss0)?;
    s.ratio("pss_slope_mb_per_100", fit.slope * 100.0);
    s.ratio("pss_slope_lower_mb_per_100", fit.lower_95 * 100.0);
    s.note(format!("leak check: {cycles} acquire/new-page/navigate/release cycles on a pool of 2, PSS sampled every 10 after {warmup}; slope {:.1} MB per 100 cycles, 95 % interval {:.1} to {:.1}", fit.slope * 100.0, fit.lower_95 * 100.0, fit.upper_95 * 100.0));
    Ok(())
}

/// A least-squares line's slope and its 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct SlopeFit {
    slope: f64,
    lower_95: f64,
    upper_95: f64,
}

/// The least-squares slope of `ys` over `xs`, with a 95 % interval from the
/// residuals' spread (Student's t, n - 2 degrees of freedom).
pub(super) fn least_squares(xs: &[f64], ys: &[f64]) -> SlopeFit {
    let flat = SlopeFit {
        slope: 0.0,
        lower_95: 0.0,
        upper_95: 0.0,
    };
    let n = xs.len() as f64;
    if xs.len() < 3 {
        return flat;
    }
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let sxy: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let sxx: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    if sxx == 0.0 {
        return flat;
    }
    let slope = sxy / sxx;
    let residuals: f64 = xs
        .iter()
        .zip(ys)
        .map(|(x, y)| (y - (my + slope * (x - mx))).powi(2))
        .sum();
    let se = (residuals / (n - 2.0) / sxx).sqrt();
    let t = statrs::distribution::StudentsT::new(0.0, 1.0, n - 2.0)
        .map(|d| statrs::distribution::ContinuousCDF::inverse_cdf(&d, 0.975))
        .unwrap_or(f64::INFINITY);
    SlopeFit {
        slope,
        lower_95: slope - t * se,
        upper_95: slope + t * se,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn slope_of_a_line_is_its_gradient_and_noise_widens_its_interval() {
        let xs = [10.0, 20.0, 30.0, 40.0];
        let ys: Vec<f64> = xs.iter().map(|x| 3.0 + 0.5 * x).collect();
        let fit = super::least_squares(&xs, &ys);
        assert!((fit.slope - 0.5).abs() < 1e-12);
        assert!((fit.lower_95 - 0.5).abs() < 1e-9, "{fit:?}");
        let noisy = [8.0, 14.0, 9.0, 22.0];
        let fit = super::least_squares(&xs, &noisy);
        assert!(
            fit.lower_95 < fit.slope && fit.slope < fit.upper_95,
            "{fit:?}"
        );
        // By hand: slope 185 / 500 = 0.37, standard error 0.233024, and
        // t(0.975, 2 degrees of freedom) = 4.302653.
        assert!((fit.slope - 0.37).abs() < 1e-12, "{fit:?}");
        assert!(
            (fit.upper_95 - fit.slope - 4.302653 * 0.233024).abs() < 1e-4,
            "{fit:?}"
        );
    }
}
