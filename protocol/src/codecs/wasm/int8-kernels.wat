;; SIMD kernels for the int8 codec (protocol/src/codecs/int8.ts), over whole 260-byte blocks:
;; a float32 LE scale, then 256 int8 values. Compiled by protocol/scripts/build-wasm.ts into
;; int8-kernels.wasm.ts; a test checks the two agree.
(module
  (import "env" "memory" (memory 1))

  ;; Adds f32(w · f32(q · scale)) to dst[i] in float32 for every value of `blocks` blocks at
  ;; src: the JS fold's arithmetic (int8.ts), so the bits are the same. `w` is a float32 weight.
  ;; A block whose scale is 0 adds nothing.
  (func (export "fold") (param $src i32) (param $blocks i32) (param $dst i32) (param $w f32)
    (local $scale f32) (local $sv v128) (local $wv v128) (local $p i32) (local $end i32)
    (local $q v128) (local $lo v128) (local $hi v128)
    (local.set $wv (f32x4.splat (local.get $w)))
    (block $done
      (loop $next_block
        (br_if $done (i32.eqz (local.get $blocks)))
        (local.set $scale (f32.load align=1 (local.get $src)))
        (if (f32.ne (local.get $scale) (f32.const 0))
          (then
            (local.set $sv (f32x4.splat (local.get $scale)))
            (local.set $p (i32.add (local.get $src) (i32.const 4)))
            (local.set $end (i32.add (local.get $p) (i32.const 256)))
            (loop $sixteen
              (local.set $q (v128.load align=1 (local.get $p)))
              (local.set $lo (i16x8.extend_low_i8x16_s (local.get $q)))
              (local.set $hi (i16x8.extend_high_i8x16_s (local.get $q)))
              (v128.store offset=0 align=4 (local.get $dst)
                (f32x4.add (v128.load offset=0 align=4 (local.get $dst))
                  (f32x4.mul (local.get $wv)
                    (f32x4.mul (local.get $sv) (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $lo)))))))
              (v128.store offset=16 align=4 (local.get $dst)
                (f32x4.add (v128.load offset=16 align=4 (local.get $dst))
                  (f32x4.mul (local.get $wv)
                    (f32x4.mul (local.get $sv) (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $lo)))))))
              (v128.store offset=32 align=4 (local.get $dst)
                (f32x4.add (v128.load offset=32 align=4 (local.get $dst))
                  (f32x4.mul (local.get $wv)
                    (f32x4.mul (local.get $sv) (f32x4.convert_i32x4_s (i32x4.extend_low_i16x8_s (local.get $hi)))))))
              (v128.store offset=48 align=4 (local.get $dst)
                (f32x4.add (v128.load offset=48 align=4 (local.get $dst))
                  (f32x4.mul (local.get $wv)
                    (f32x4.mul (local.get $sv) (f32x4.convert_i32x4_s (i32x4.extend_high_i16x8_s (local.get $hi)))))))
              (local.set $dst (i32.add (local.get $dst) (i32.const 64)))
              (local.set $p (i32.add (local.get $p) (i32.const 16)))
              (br_if $sixteen (i32.lt_u (local.get $p) (local.get $end)))))
          (else (local.set $dst (i32.add (local.get $dst) (i32.const 1024)))))
        (local.set $src (i32.add (local.get $src) (i32.const 260)))
        (local.set $blocks (i32.sub (local.get $blocks) (i32.const 1)))
        (br $next_block))))

  ;; For each of `blocks` blocks at src, writes three i32 at out + 12·b: Σ q² (exact), the
  ;; largest |q| (128 for a -128), and 1 if a value is -128 (which encoders never write).
  (func (export "scan") (param $src i32) (param $blocks i32) (param $out i32)
    (local $p i32) (local $end i32) (local $q v128) (local $sq v128) (local $mx v128) (local $bad v128)
    (local $lo v128) (local $hi v128)
    (block $done
      (loop $next_block
        (br_if $done (i32.eqz (local.get $blocks)))
        (local.set $p (i32.add (local.get $src) (i32.const 4)))
        (local.set $end (i32.add (local.get $p) (i32.const 256)))
        (local.set $sq (v128.const i32x4 0 0 0 0))
        (local.set $mx (v128.const i32x4 0 0 0 0))
        (local.set $bad (v128.const i32x4 0 0 0 0))
        (loop $sixteen
          (local.set $q (v128.load align=1 (local.get $p)))
          (local.set $bad (v128.or (local.get $bad) (i8x16.eq (local.get $q) (i8x16.splat (i32.const -128)))))
          (local.set $mx (i8x16.max_u (local.get $mx) (i8x16.abs (local.get $q))))
          (local.set $lo (i16x8.extend_low_i8x16_s (local.get $q)))
          (local.set $hi (i16x8.extend_high_i8x16_s (local.get $q)))
          (local.set $sq (i32x4.add (local.get $sq)
            (i32x4.add (i32x4.dot_i16x8_s (local.get $lo) (local.get $lo)) (i32x4.dot_i16x8_s (local.get $hi) (local.get $hi)))))
          (local.set $p (i32.add (local.get $p) (i32.const 16)))
          (br_if $sixteen (i32.lt_u (local.get $p) (local.get $end))))
        ;; horizontal max of 16 unsigned bytes
        (local.set $mx (i8x16.max_u (local.get $mx) (i8x16.shuffle 8 9 10 11 12 13 14 15 0 1 2 3 4 5 6 7 (local.get $mx) (local.get $mx))))
        (local.set $mx (i8x16.max_u (local.get $mx) (i8x16.shuffle 4 5 6 7 0 1 2 3 4 5 6 7 0 1 2 3 (local.get $mx) (local.get $mx))))
        (local.set $mx (i8x16.max_u (local.get $mx) (i8x16.shuffle 2 3 0 1 2 3 0 1 2 3 0 1 2 3 0 1 (local.get $mx) (local.get $mx))))
        (local.set $mx (i8x16.max_u (local.get $mx) (i8x16.shuffle 1 0 1 0 1 0 1 0 1 0 1 0 1 0 1 0 (local.get $mx) (local.get $mx))))
        (i32.store (local.get $out)
          (i32.add
            (i32.add (i32x4.extract_lane 0 (local.get $sq)) (i32x4.extract_lane 1 (local.get $sq)))
            (i32.add (i32x4.extract_lane 2 (local.get $sq)) (i32x4.extract_lane 3 (local.get $sq)))))
        (i32.store offset=4 (local.get $out) (i8x16.extract_lane_u 0 (local.get $mx)))
        (i32.store offset=8 (local.get $out) (v128.any_true (local.get $bad)))
        (local.set $out (i32.add (local.get $out) (i32.const 12)))
        (local.set $src (i32.add (local.get $src) (i32.const 260)))
        (local.set $blocks (i32.sub (local.get $blocks) (i32.const 1)))
        (br $next_block))))
)
