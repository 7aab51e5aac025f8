#!/usr/bin/env bash
# Makes one still-camera clip with known motion, for the motion tests and bench/motion.sh.
#
# Usage: tools/motion_clips.sh FAMILY OUT.mp4 [WIDTH HEIGHT FPS SECONDS]   (default 256 144 4 30)
#
# Writes OUT.mp4 and OUT.gt: one "start end" line (seconds) per true motion event (empty when
# nothing should be found), and for the roi-* families OUT.roi: the region watched, "x,y,w,h" as
# fractions of the picture. Times scale with SECONDS (D); the object is a 1/13-width,
# 0.3-height box in a high-visibility yellow that crosses the picture from left to right.
#
# Families (D = 30 s: the object crosses 10.0–16.0 s):
#   still           nothing happens (sensor noise only)
#   object          the object crosses
#   step            brightness +0.15 and contrast ×1.25 at 0.4·D (lights switched on)
#   step-object     the step, with the object crossing during it
#   ramp            brightness −0.10 → +0.20 over 0.3·D…0.6·D (clouds, dusk)
#   ramp-object     the ramp, with the object crossing during it
#   exposure        a 1-second exposure pulse (brightness +0.25, contrast ×1.3, gamma 0.8) at 0.5·D
#   irswitch        day → night IR at 0.5·D: colour gone, contrast ×1.4, brightness +0.1
#   clock           a burned-in clock ticking every second (top left), a timecode counting frames
#                   (top right) and a camera name (bottom right)
#   clock-object    the clock and the object
#   foliage         a textured patch (a bush) jittering in place, upper right
#   foliage-object  the bush and the object
#   rain            heavy sensor noise and rain streaks over the whole picture
#   rain-object     rain and the object
#   roi-inside      the object crosses the right half only; the region is the right half
#   roi-outside     the object crosses the left half only; the region is the right half
set -euo pipefail

family=${1:?family}
out=${2:?output .mp4}
W=${3:-256}
H=${4:-144}
FPS=${5:-4}
D=${6:-30}
FONT=${MOTION_CLIPS_FONT:-/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf}
base=${out%.mp4}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

calc() { awk "BEGIN { v = $1; printf \"%.4f\", v }"; }
ff() { ffmpeg -nostdin -v error -y "$@"; }

# A still scene: smooth colour fields, two "buildings" and a fixed grain.
ff -f lavfi -i "color=c=gray:s=${W}x${H}:d=1,format=rgb24,geq=r='100+60*sin(X*256/W/13)+40*sin(Y*144/H/7+X*256/W/31)':g='110+50*sin(Y*144/H/11)+30*cos(X*256/W/17)':b='90+60*cos((X*256/W+Y*144/H)/19)',drawbox=x=iw*0.12:y=ih*0.14:w=iw*0.23:h=ih*0.35:color=0x303030:t=fill,drawbox=x=iw*0.66:y=ih*0.55:w=iw*0.2:h=ih*0.3:color=0xd0d0d0:t=fill,noise=alls=25" \
    -frames:v 1 "$work/bg.png"

t0=$(calc "$D / 3") t1=$(calc "$D / 3 + $D / 5")
ow=$((W / 13)) oh=$((H * 3 / 10)) oy=$((H * 45 / 100))
x0=0 x1=$((W - ow))
case "$family" in
    roi-inside) x0=$((W / 2 + 2)) ;;
    roi-outside) x1=$((W / 2 - ow - 2)) ;;
esac
: >"$base.gt"
has_object=0
case "$family" in
    object | *-object | roi-inside) has_object=1; echo "$t0 $t1" >>"$base.gt" ;;
    roi-outside) has_object=1 ;;
esac
case "$family" in roi-*) echo "0.5,0,0.5,1" >"$base.roi" ;; esac

inputs=(-loop 1 -framerate "$FPS" -t "$D" -i "$work/bg.png")
graph="[0:v]format=rgb24[bg0];"
last="[bg0]"
n=1
if [[ "$family" == foliage* ]]; then
    pw=$((W / 4)) ph=$((H / 4)) j=$(calc "$W / 80")
    ff -f lavfi -i "color=c=0x2f6a2a:s=$((pw + 16))x$((ph + 16)):d=1,format=rgb24,noise=alls=90,boxblur=1" -frames:v 1 "$work/bush.png"
    inputs+=(-loop 1 -framerate "$FPS" -t "$D" -i "$work/bush.png")
    graph+="[$n:v]crop=w=$pw:h=$ph:x='8+$j*sin(n*1.9)+$j*0.6*sin(n*0.7)':y='8+$j*cos(n*2.3)'[bush];"
    graph+="${last}[bush]overlay=x=$((W * 6 / 10)):y=$((H / 20))[b1];"
    last="[b1]"
    n=$((n + 1))
fi
if ((has_object)); then
    inputs+=(-f lavfi -i "color=c=0xe0c838:s=${ow}x${oh}:r=$FPS:d=$D")
    speed=$(calc "($x1 - $x0) / ($t1 - $t0)")
    graph+="${last}[$n:v]overlay=x='$x0+(t-$t0)*$speed':y=$oy:enable='between(t,$t0,$t1)'[o];"
    last="[o]"
    n=$((n + 1))
fi
light="null"
case "$family" in
    step*) light="eq=brightness='0.15*gte(t,$(calc "0.4 * $D"))':contrast='1+0.25*gte(t,$(calc "0.4 * $D"))':eval=frame" ;;
    ramp*)
        a=$(calc "0.3 * $D") b=$(calc "0.6 * $D")
        light="eq=brightness='-0.1+0.3*clip((t-$a)/($b-$a)\,0\,1)':eval=frame"
        ;;
    exposure)
        p=$(calc "0.5 * $D") q=$(calc "0.5 * $D + 1")
        light="eq=brightness='0.25*between(t,$p,$q)':contrast='1+0.3*between(t,$p,$q)':gamma='1-0.2*between(t,$p,$q)':eval=frame"
        ;;
    irswitch)
        p=$(calc "0.5 * $D")
        light="hue=s='if(gte(t,$p),0,1)',eq=contrast='1+0.4*gte(t,$p)':brightness='0.1*gte(t,$p)':eval=frame"
        ;;
esac
graph+="${last}${light},format=yuv420p"
if [[ "$family" == rain* ]]; then
    graph+=",noise=alls=18:allf=t[lit];"
    inputs+=(-f lavfi -i "color=c=black:s=${W}x$((H / 4)):r=$FPS:d=$D")
    graph+="[$n:v]format=gray,geq=lum='255*lt(random(1)\,0.01)',scale=${W}:${H}:flags=neighbor,format=yuv420p[streaks];"
    graph+="[lit][streaks]blend=c0_mode=screen:c0_opacity=0.6:c1_mode=normal:c2_mode=normal"
else
    graph+=",noise=alls=6:allf=t"
fi
if [[ "$family" == clock* ]]; then
    fs=$((H / 12))
    graph+=",drawtext=fontfile=$FONT:text='%{pts\:gmtime\:1700000000\:%Y-%m-%d %H\\\\\:%M\\\\\:%S}':x=4:y=4:fontsize=$fs:fontcolor=white:box=1:boxcolor=black@0.6"
    graph+=",drawtext=fontfile=$FONT:text='CAM 07':x=w-tw-4:y=h-th-4:fontsize=$fs:fontcolor=white"
    graph+=",drawtext=fontfile=$FONT:timecode='00\\:00\\:00\\:00':rate=$FPS:x=w-tw-4:y=4:fontsize=$fs:fontcolor=white:box=1:boxcolor=black@0.6"
fi
graph+="[v]"
ff "${inputs[@]}" -filter_complex "$graph" -map "[v]" -t "$D" -r "$FPS" \
    -c:v libx264 -preset veryfast -crf 20 -pix_fmt yuv420p -g $((FPS * 4)) -threads 1 -an "$out"
