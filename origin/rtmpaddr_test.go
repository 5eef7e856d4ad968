package origin

import "testing"

// The RTMP address an origin registers is its advertised host with the
// RTMP listener's port, or nothing without a listener.
func TestRTMPAddrRegistered(t *testing.T) {
	for _, tc := range []struct {
		advertise string
		port      int
		want      string
	}{
		{"http://127.0.0.1:7100", 1935, "rtmp://127.0.0.1:1935"},
		{"http://[::1]:7100", 1935, "rtmp://[::1]:1935"},
		{"http://127.0.0.1:7100", 0, ""},
		{"", 1935, ""},
	} {
		o := &Origin{cfg: Config{Advertise: tc.advertise, RTMPPort: tc.port}}
		if got := o.rtmpAddr(); got != tc.want {
			t.Errorf("advertise %q port %d: %q, want %q", tc.advertise, tc.port, got, tc.want)
		}
	}
}
