# Writes a checkpoint of N items (obs 17, act 6) and reports replay_server's peak RSS restoring it.
import os, struct, subprocess, sys, time, zlib, signal
N = int(sys.argv[1]); bins = sys.argv[2:]
od, ad = 17, 6
d = '/tmp/ckpt_rss'; os.makedirs(d, exist_ok=True)
path = d + '/replay-0.ckpt'
item = struct.pack('<%df' % od, *([0.5]*od)) + struct.pack('<%df' % ad, *([0.1]*ad)) + struct.pack('<f', 1.0) + struct.pack('<%df' % od, *([0.6]*od)) + b'\x00'
hdr = b'SOFTQRPL' + struct.pack('<IIIIQQQQQQ', 1, od, ad, 0, N, 0, N, N, 0, 1) + struct.pack('<IQ', 0, N)
crc = zlib.crc32(hdr)
with open(path, 'wb') as f:
    f.write(hdr)
    chunk = item * 10000
    for i in range(N // 10000):
        f.write(chunk); crc = zlib.crc32(chunk, crc)
    f.write(struct.pack('<I', crc))
print('file MB', os.path.getsize(path) / 1e6)
for b in bins:
    t = time.time()
    p = subprocess.Popen([b, '--port=0', '--capacity=%d' % N, '--checkpoint_dir=' + d, '--wal=false'], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = p.stdout.readline()
    while 'listening' not in line and line:
        print('  ', line.strip()); line = p.stdout.readline()
    el = time.time() - t
    hwm = [l for l in open('/proc/%d/status' % p.pid) if l.startswith('VmHWM')][0].split()[1]
    rss = [l for l in open('/proc/%d/status' % p.pid) if l.startswith('VmRSS')][0].split()[1]
    p.send_signal(signal.SIGKILL); p.wait()
    print(b, 'restore+start %.2f s' % el, 'peak RSS %d MB' % (int(hwm)//1024), 'RSS %d MB' % (int(rss)//1024))
