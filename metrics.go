package bluegreen

import (
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
		Help:      "Since when the answers are stale, while they are (etcd cannot be reached, its watch lags, its history was replaced, or the answers come from the snapshot file); 0 while they are current.",
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

	watchRestartsTotal = promauto.NewCounter(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "watch_restarts_total",
		Help:      "Times the etcd watch was started again after it ended with an error.",
	})
)

var (
	// Checks are opted into per name, so these series are per name too.
	healthyAddresses = promauto.NewGaugeVec(prometheus.GaugeOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "healthy_addresses",
		Help:      "Addresses of a checked name's colour that pass their check; 0 means the colour is down.",
	}, []string{"name", "colour"})

	failoversTotal = promauto.NewCounterVec(prometheus.CounterOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "failovers_total",
		Help:      "Times a name was answered with its idle colour because every address of its active colour was down.",
	}, []string{"name"})

	probeSeconds = promauto.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: plugin.Namespace,
		Subsystem: pluginName,
		Name:      "check_duration_seconds",
		Help:      "How long one check of one address took, by check type and result.",
		Buckets:   prometheus.ExponentialBuckets(0.0001, 4, 9), // 100µs to 6.5s
	}, []string{"type", "result"})
)
