#!/bin/sh
# Regenerates testdata/hls: the bundled 30 s sample clip (ffmpeg testsrc2 test
# pattern + a 440 Hz tone) as an unencrypted MPEG-TS HLS ladder of 240p and
# 360p with 2 s keyframe-aligned segments. Run from this directory; needs
# ffmpeg (Debian 5.1). The output is committed so the demo and tests work
# without ffmpeg.
set -eu
rm -rf testdata/hls
mkdir -p testdata/hls
ffmpeg -hide_banner -loglevel error -y \
  -f lavfi -i "testsrc2=size=640x360:rate=24:duration=30" \
  -f lavfi -i "sine=frequency=440:sample_rate=48000:duration=30" \
  -filter_complex "[0:v]split=2[a][b];[a]scale=-2:240,format=yuv420p[v0];[b]format=yuv420p[v1]" \
  -map "[v0]" -map 1:a -map "[v1]" -map 1:a \
  -c:v libx264 -preset veryfast -profile:v main -threads 1 \
  -b:v:0 160k -maxrate:v:0 160k -bufsize:v:0 320k \
  -b:v:1 280k -maxrate:v:1 280k -bufsize:v:1 560k \
  -c:a aac -b:a 48k -ac 2 \
  -force_key_frames "expr:gte(t,n_forced*2)" -sc_threshold 0 \
  -f hls -hls_time 2 -hls_playlist_type vod -hls_segment_type mpegts \
  -hls_flags independent_segments \
  -hls_segment_filename "testdata/hls/%v/seg%05d.ts" \
  -master_pl_name master.m3u8 \
  -var_stream_map "v:0,a:0,name:240p v:1,a:1,name:360p" \
  "testdata/hls/%v/index.m3u8"
