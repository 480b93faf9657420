"""The bare baseline of the outbound benchmark: 5,000 replies from 16 smtplib clients straight to
the Postfix of .ci/mail-servers (127.0.0.1:10025), one connection each, no platform in between."""
import smtplib, threading, time, uuid
N=5000; C=16
msg=("From: a@acme.test\r\nTo: r@out.test\r\nSubject: Re: 문의\r\nMessage-ID: <%s@acme.test>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" + "답변: 내일 도착 예정입니다.\r\n"*3)
count=[0]; lock=threading.Lock()
def worker():
    s=smtplib.SMTP('127.0.0.1',10025)
    while True:
        with lock:
            if count[0]>=N: break
            count[0]+=1; n=count[0]
        s.sendmail('a@acme.test',['reader%d@out.example.com'%(n%100)],(msg%uuid.uuid4()).encode())
    s.quit()
t=time.time(); ts=[threading.Thread(target=worker) for _ in range(C)]
[x.start() for x in ts]; [x.join() for x in ts]
print("accepted %d in %.2fs = %.0f/s"%(N,time.time()-t,N/(time.time()-t)))
