import ParleyServer

await ParleyMain.run()
