package b2bua

import "testing"

func TestOffersG711(t *testing.T) {
	tests := []struct {
		name string
		sdp  string
		want bool
	}{
		{"PCMU and PCMA", "v=0\r\nm=audio 4000 RTP/AVP 0 8 101\r\n", true},
		{"PCMA only", "v=0\r\nm=audio 4000 RTP/AVP 8\r\n", true},
		{"G722 and Opus only", "v=0\r\nm=audio 4000 RTP/AVP 9 111\r\na=rtpmap:111 opus/48000/2\r\n", false},
		{"video only", "v=0\r\nm=video 4000 RTP/AVP 0\r\n", false},
		{"no SDP (late offer)", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := offersG711([]byte(tc.sdp)); got != tc.want {
				t.Fatalf("offersG711 = %v, want %v", got, tc.want)
			}
		})
	}
}
