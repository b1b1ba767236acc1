package bluegreen

import (
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bluegreen-dns/bluegreen/schema"
	"github.com/coredns/coredns/plugin"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promauto"
)

var (
	answersTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "answers_total",
		Help:      "Answers for managed names (and their blue. and green. previews), by the colour answered.",
	}, []string{"server", "colour"})

	previewsRefusedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "previews_refused_total",
		Help:      "Queries for a preview (blue.NAME, green.NAME) or a state (_bluegreen.NAME) refused: the client is outside the preview networks.",
	}, []string{"server"})
	// The gauges describe one watcher each, so they are labelled with its
	// prefix: server blocks with different prefixes do not overwrite
	// each other.
	namesManaged = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "names",
		Help:      "Names being answered, by etcd prefix.",
	}, []string{"prefix"})

	switchesTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "switches_total",
		Help:      "Changes of a name's active colour from etcd (failovers are counted in failovers_total).",
	})

	revision = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "revision",
		Help:      "The etcd revision of the data being answered, by etcd prefix.",
	}, []string{"prefix"})

	staleSinceSeconds = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "stale_since_timestamp_seconds",
		Help:      "Since when the answers are stale, while they are (etcd cannot be reached, its watch lags, its history was replaced, or the answers come from the snapshot file, or etcd was never listed and nothing is answered); 0 while they are current.",
	}, []string{"prefix"})

	ignoredKeys = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "ignored_keys",
		Help:      "etcd keys under the prefix the plugin ignores now: values that do not parse or fit (the name answers its last good value), and keys outside the layout or the zones.",
	}, []string{"prefix"})

	invalidValuesTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "invalid_values_total",
		Help:      "etcd keys or values ignored because they do not parse or do not fit, once per key and revision.",
	})

	relistsTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "relists_total",
		Help:      "Times the etcd prefix was listed again after the first list, by prefix and reason: compacted, revision_went_back, cluster_changed, diverged, watch_stalled.",
	}, []string{"prefix", "reason"})

	trialsEndedTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "trials_ended_total",
		Help:      "Trial flips ended, by outcome: kept (confirmed) or reverted (rolled back, or the lease expired unconfirmed).",
	}, []string{"outcome"})

	watchRestartsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "watch_restarts_total",
		Help:      "Times the etcd watch was started again after it ended with an error.",
	})
)

var (
	probeSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "check_duration_seconds",
		Help:      "How long one check of one address took, by check type and result.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 9), // 100µs to 6.5s
	}, []string{"type", "result"})
)

// Why the prefix was listed again: relists_total's reasons.
const (
	relistCompacted    = "compacted"
	relistWentBack     = "revision_went_back"
	relistCluster      = "cluster_changed"
	relistDiverged     = "diverged"
	relistWatchStalled = "watch_stalled"
)

var relistReasons = []string{relistCompacted, relistWentBack, relistCluster, relistDiverged, relistWatchStalled}

// trialOutcomes are trials_ended_total's.
var trialOutcomes = []string{"kept", "reverted"}

// nameAnswers counts a name's answers by colour, for name_answers_total:
// the handler adds to it, and every entry of the name shares it.
type nameAnswers [2]atomic.Uint64

// The per-name series are made at each scrape from the snapshots served,
// not kept in a GaugeVec: with ten thousand checked names, the kept series
// took 10 MB of small objects that every garbage collection had to mark. A
// name's series go with the name, or with what gave it them (its check,
// trial, canary share or answer counters).
var perName = newNameCollector()

func init() { prometheus.MustRegister(perName) }

func newNameCollector() *nameCollector {
	desc := func(name, help string) *prometheus.Desc {
		return prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, pluginName, name), help, []string{"name", "colour"}, nil)
	}
	return &nameCollector{
		healthy: desc("healthy_addresses", "Addresses of a checked name's colour that pass their check; 0 means the colour is down."),
		trial:   desc("trial_until_timestamp_seconds", "While a trial flip is answered, when its lease is due to expire and the name to go back to its active colour, by the trial's colour."),
		answers: desc("name_answers_total", "Answers for a name (and its previews), by the colour answered; for the first name_metrics names."),
		serving: desc("answering", "1 for the colour most clients of a name are answered (its active colour, its trial's, or the idle one after a failover); for names with a check, trial, canary share or answer series."),
		canary:  desc("canary_percent", "The share of client networks etcd asks to send to a name's other colour (the canary key, or a release step's trial), by that colour."),
		// 0 from the moment a name has a check, so that increase() sees its
		// first failover.
		failovers: prometheus.NewDesc(prometheus.BuildFQName(plugin.Namespace, pluginName, "failovers_total"),
			"Times a checked name was answered with its idle colour because every address of its active colour was down.", []string{"name"}, nil),
	}
}

// nameCollector reads the snapshots of every running instance.
type nameCollector struct {
	healthy, trial, answers, serving, canary, failovers *prometheus.Desc

	mu    sync.Mutex
	snaps []*atomic.Pointer[snapshot]
}

func (hc *nameCollector) add(snap *atomic.Pointer[snapshot]) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.snaps = append(hc.snaps, snap)
}

func (hc *nameCollector) remove(snap *atomic.Pointer[snapshot]) {
	hc.mu.Lock()
	defer hc.mu.Unlock()
	hc.snaps = slices.DeleteFunc(hc.snaps, func(s *atomic.Pointer[snapshot]) bool { return s == snap })
}

func (hc *nameCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{hc.healthy, hc.trial, hc.answers, hc.serving, hc.canary, hc.failovers} {
		ch <- d
	}
}

// Collect makes the series of each name that has any. A name served twice
// (by two server blocks, or by an instance and the one replacing it in a
// reload) has the series of its first.
func (hc *nameCollector) Collect(ch chan<- prometheus.Metric) {
	hc.mu.Lock()
	snaps := slices.Clone(hc.snaps)
	hc.mu.Unlock()
	seen := map[string]bool{}
	for _, p := range snaps {
		snap := p.Load()
		if snap == nil {
			continue
		}
		snap.each(func(name string, e *entry) {
			canary := e.canary > 0 || (e.trial != nil && e.trial.HasCanary)
			if (e.check.Raw == "" && e.trial == nil && e.answers == nil && !canary) || seen[name] {
				return
			}
			seen[name] = true
			label := strings.TrimSuffix(name, ".")
			gauge := func(d *prometheus.Desc, v float64, c schema.Colour) {
				ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, label, c.String())
			}
			if e.serving() {
				gauge(hc.serving, 1, e.answering())
			}
			if canary {
				gauge(hc.canary, float64(e.canary), e.active.Other())
			}
			if t := e.trial; t != nil {
				gauge(hc.trial, float64(t.Until.Unix()), t.Colour)
			}
			if n := e.answers; n != nil {
				for _, c := range schema.Colours {
					ch <- prometheus.MustNewConstMetric(hc.answers, prometheus.CounterValue, float64(n[c].Load()), label, c.String())
				}
			}
			if e.check.Raw == "" {
				return
			}
			ch <- prometheus.MustNewConstMetric(hc.failovers, prometheus.CounterValue, float64(e.failovers), label)
			for _, c := range schema.Colours {
				if t := e.targets[c]; t.Set() && t.CNAME == "" {
					gauge(hc.healthy, float64(e.healthy(c)), c)
				}
			}
		})
	}
}
