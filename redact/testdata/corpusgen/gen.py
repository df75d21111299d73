import random, base64, json, os, string, uuid, hashlib, textwrap, urllib.parse, sys

rng = random.Random(20260511)
OUT = sys.argv[1]
ALNUM = string.ascii_letters + string.digits
UPPER = string.ascii_uppercase + string.digits
HEX = '0123456789abcdef'
B64 = string.ascii_letters + string.digits + '+/'
URLSAFE = string.ascii_letters + string.digits + '-_'

def r(alpha, n): return ''.join(rng.choice(alpha) for _ in range(n))
def b64(nbytes): return base64.b64encode(rng.randbytes(nbytes)).decode()
def b64url(nbytes): return base64.urlsafe_b64encode(rng.randbytes(nbytes)).decode().rstrip('=')
def uid(): return str(uuid.UUID(int=rng.getrandbits(128), version=4))
def sha1(): return r(HEX, 40)
def sha256(): return r(HEX, 64)

def gh(p='ghp'): return f'{p}_' + r(ALNUM, 36)
def ghpat(): return 'github_pat_' + r(ALNUM, 22) + '_' + r(ALNUM, 59)
def glpat(): return 'glpat-' + r(URLSAFE, 20)
def akia(p='AKIA'): return p + r('ABCDEFGHIJKLMNOPQRSTUVWXYZ234567', 16)
def awssec(): return r(B64, 40)
def aiza(): return 'AIza' + r(URLSAFE, 35)
def azkey(): return base64.b64encode(rng.randbytes(64)).decode()
def xoxb(): return f'xoxb-{r(string.digits,12)}-{r(string.digits,13)}-{r(ALNUM,24)}'
def xoxp(): return f'xoxp-{r(string.digits,12)}-{r(string.digits,12)}-{r(string.digits,13)}-{r(HEX,32)}'
def xapp(): return f'xapp-1-A{r(UPPER,10)}-{r(string.digits,13)}-{r(HEX,64)}'
def hookpath(): return f'T{r(UPPER,8)}/B{r(UPPER,10)}/{r(ALNUM,24)}'
def tg(): return f'{rng.randint(1000000000, 7999999999)}:AA{r(URLSAFE,33)}'
def twsk(): return 'SK' + r(HEX, 32)
def stripe(p='sk_live_'): return p + '51' + r(ALNUM, 96)
def whsec(): return 'whsec_' + r(ALNUM, 32)
def openai(): return 'sk-proj-' + r(URLSAFE, 74) + 'T3BlbkFJ' + r(URLSAFE, 74)
def openai_old(): return 'sk-' + r(ALNUM, 20) + 'T3BlbkFJ' + r(ALNUM, 20)
def anthropic(): return 'sk-ant-api03-' + r(URLSAFE, 93) + 'AA'
def npm(): return 'npm_' + r(ALNUM, 36)
def hf(): return 'hf_' + r(ALNUM, 34)
def onytok(): return 'ony_dev_' + b64url(32)
def pw(n=16):
    words = ['maple','harbor','quartz','violet','copper','falcon','meadow','ember','cobalt','juniper','saffron','tundra']
    style = rng.randint(0, 3)
    if style == 0: return r(ALNUM + '!#%^*-_+', n)
    if style == 1: return rng.choice(words).capitalize() + str(rng.randint(10,99)) + rng.choice('!#%*') + rng.choice(words) + str(rng.randint(100,999))
    if style == 2: return '-'.join(rng.choice(words) for _ in range(3)) + '-' + str(rng.randint(10, 99))
    return r(ALNUM, n)
def jwt(payload=None):
    h = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(',', ':')).encode()).decode().rstrip('=')
    p = payload or {"sub": uid(), "iat": rng.randint(1700000000, 1800000000), "exp": rng.randint(1800000000, 1900000000), "scope": "deploy:write"}
    pp = base64.urlsafe_b64encode(json.dumps(p, separators=(',', ':')).encode()).decode().rstrip('=')
    return f'{h}.{pp}.{b64url(32)}'
def pem(label='RSA PRIVATE KEY', nbytes=1190, prefix=b'\x30\x82\x04\xa4\x02\x01\x00\x02\x82\x01\x01\x00', sep='\n', linepfx=''):
    body = base64.b64encode(prefix + rng.randbytes(nbytes)).decode()
    lines = [body[i:i+64] for i in range(0, len(body), 64)]
    return sep.join([f'-----BEGIN {label}-----'] + [linepfx + l for l in lines] + [linepfx + f'-----END {label}-----'])
def openssh():
    body = base64.b64encode(b'openssh-key-v1\x00' + b'\x00\x00\x00\x04none\x00\x00\x00\x04none' + rng.randbytes(380)).decode()
    lines = [body[i:i+70] for i in range(0, len(body), 70)]
    return '\n'.join(['-----BEGIN OPENSSH PRIVATE KEY-----'] + lines + ['-----END OPENSSH PRIVATE KEY-----'])
def hexs(n): return r(HEX, n)
def ts(): return f'2026-03-{rng.randint(10,28):02d}T{rng.randint(0,23):02d}:{rng.randint(0,59):02d}:{rng.randint(0,59):02d}Z'

docs = []
cur = None
def S(value, kind=None):
    cur['secrets'].append({'value': value, **({'kind': kind} if kind else {})})
    return value
def begin(path):
    global cur
    cur = {'file': path, 'secrets': []}
def end(text):
    path = os.path.join(OUT, cur['file'])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f: f.write(text)
    # de-duplicate secrets by value
    seen, uniq = set(), []
    for s in cur['secrets']:
        if s['value'] not in seen:
            seen.add(s['value']); uniq.append(s)
    cur['secrets'] = uniq
    for s in uniq:
        assert s['value'] in text, (cur['file'], s['value'])
    docs.append(cur)

exec(open(os.path.join(os.path.dirname(os.path.abspath(__file__)), 'docs.py')).read())

with open(os.path.join(OUT, 'manifest.json'), 'w') as f:
    json.dump(docs, f, indent=1)
    f.write('\n')
print(len(docs), 'documents', sum(len(d['secrets']) for d in docs), 'secrets')
